"""k8py.scheduler: places pods on nodes (filter and score plugins, bind via pods/binding).

Component entry point: `k8py.scheduler.run.run(ctx)`; the scheduler itself is
`scheduler.Scheduler(client, clock).run()`.
"""
