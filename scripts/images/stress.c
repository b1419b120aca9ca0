/* stress: a tiny static memory/CPU hog for k8py test images.
 *
 * Accepts the subset of polinux/stress's flags that Kubernetes' docs use:
 *   stress --vm 1 --vm-bytes 150M --vm-hang 1      allocate and touch 150 MiB, then hold
 *   stress --cpu 2                                 spin on 2 cores
 *   stress --timeout 10                            exit after 10 s (default: forever)
 * Memory is touched page by page so that the cgroup charge is real; under a lower
 * memory limit the kernel OOM-kills the process (exit status 137 seen by the runtime).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <sys/wait.h>

static long long parse_bytes(const char *s) {
    char *end;
    double v = strtod(s, &end);
    switch (*end) {
    case 'k': case 'K': v *= 1024.0; break;
    case 'm': case 'M': v *= 1024.0 * 1024.0; break;
    case 'g': case 'G': v *= 1024.0 * 1024.0 * 1024.0; break;
    default: break;
    }
    return (long long)v;
}

static void hog_vm(long long bytes) {
    long page = sysconf(_SC_PAGESIZE);
    char *p = malloc((size_t)bytes);
    if (!p) { fprintf(stderr, "stress: malloc of %lld bytes failed\n", bytes); exit(1); }
    for (long long i = 0; i < bytes; i += page) p[i] = 'Z';
    printf("stress: allocated %lld bytes\n", bytes);
    fflush(stdout);
    for (;;) pause();
}

static void hog_cpu(void) {
    volatile unsigned long x = 0;
    for (;;) x++;
}

int main(int argc, char **argv) {
    int vm = 0, cpu = 0, timeout = 0;
    long long vm_bytes = 256LL * 1024 * 1024;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : "0";
        if (!strcmp(a, "--vm") || !strcmp(a, "-m")) { vm = atoi(v); i++; }
        else if (!strcmp(a, "--vm-bytes")) { vm_bytes = parse_bytes(v); i++; }
        else if (!strcmp(a, "--vm-hang") || !strcmp(a, "--vm-keep")) { if (a[5] == 'h') i++; }
        else if (!strcmp(a, "--cpu") || !strcmp(a, "-c")) { cpu = atoi(v); i++; }
        else if (!strcmp(a, "--timeout") || !strcmp(a, "-t")) { timeout = atoi(v); i++; }
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose") || !strcmp(a, "-q")) {}
        else { fprintf(stderr, "stress: unknown option %s\n", a); return 1; }
    }
    printf("stress: info: dispatching hogs: %d cpu, 0 io, %d vm, 0 hdd\n", cpu, vm);
    fflush(stdout);
    /* One vm worker and no cpu workers: hog in this process, so that an OOM kill
     * ends the container's init (exit status 137) as with a single-process image. */
    if (vm == 1 && cpu == 0 && timeout == 0) hog_vm(vm_bytes);
    pid_t kids[256];
    int n = 0;
    for (int i = 0; i < cpu && n < 256; i++) if ((kids[n++] = fork()) == 0) hog_cpu();
    for (int i = 0; i < vm && n < 256; i++) if ((kids[n++] = fork()) == 0) hog_vm(vm_bytes);
    if (timeout > 0) {
        sleep((unsigned)timeout);
        for (int i = 0; i < n; i++) kill(kids[i], SIGKILL);
        while (wait(NULL) > 0) {}
        printf("stress: info: successful run completed\n");
        return 0;
    }
    int status = 0;
    while (wait(&status) > 0) {
        if (WIFSIGNALED(status)) {
            fprintf(stderr, "stress: FAIL: worker got signal %d\n", WTERMSIG(status));
            return 1;
        }
    }
    return 0;
}
