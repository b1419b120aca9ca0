"""NodeResourcesBalancedAllocation: prefer nodes whose cpu and memory would be used in
equal fractions after placing the pod: score = (1 - std(fractions)) * 100; with two
resources std = |cpu_fraction - memory_fraction| / 2."""

from __future__ import annotations

from k8py.scheduler.framework import MAX_SCORE, CycleState
from k8py.scheduler.types import NodeInfo, PodInfo

NAME = "NodeResourcesBalancedAllocation"
WEIGHT = 1


class BalancedAllocation:
    NAME = NAME
    weight = WEIGHT

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        a = node.allocatable
        if a.milli_cpu <= 0 or a.memory <= 0:
            return 0
        cpu = min(1.0, (node.nonzero_cpu + pod.nonzero_cpu) / a.milli_cpu)
        mem = min(1.0, (node.nonzero_memory + pod.nonzero_memory) / a.memory)
        std = abs(cpu - mem) / 2
        return int((1 - std) * MAX_SCORE)


    def score_all(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        """`score` over many nodes at once (the same numbers, fewer calls)."""
        pc, pm = pod.nonzero_cpu, pod.nonzero_memory
        out: list[int] = []
        append = out.append
        for n in nodes:
            a = n.allocatable
            ac, am = a.milli_cpu, a.memory
            if ac <= 0 or am <= 0:
                append(0)
                continue
            cpu = (n.nonzero_cpu + pc) / ac
            mem = (n.nonzero_memory + pm) / am
            if cpu > 1.0:
                cpu = 1.0
            if mem > 1.0:
                mem = 1.0
            d = cpu - mem if cpu > mem else mem - cpu
            append(int((1 - d / 2) * MAX_SCORE))
        return out


def new() -> BalancedAllocation:
    return BalancedAllocation()
