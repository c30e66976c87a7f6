// Memory latency of this machine by working-set size: a random pointer chase (one pointer per
// 64-byte line, each load depending on the last), in ns per load. Used in BENCHMARKS.md
// ("Simulator speed at equal load per server") to bound what a simulator whose events meet
// random servers' state can gain from its memory layout.
//   gcc -O2 -o /tmp/memory_latency scripts/memory_latency.c && nice -n -19 /tmp/memory_latency
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <stdint.h>
int main(int argc, char **argv) {
  size_t sizes[] = {32<<10, 1<<20, 2<<20, 8<<20, 16<<20, 64<<20};
  for (int si = 0; si < 6; si++) {
    size_t n = sizes[si] / 64;
    uint64_t *a = aligned_alloc(64, n * 64);
    size_t *perm = malloc(n * sizeof(size_t));
    for (size_t i = 0; i < n; i++) perm[i] = i;
    srand(42);
    for (size_t i = n - 1; i > 0; i--) { size_t j = ((size_t)rand() * RAND_MAX + rand()) % (i + 1); size_t t = perm[i]; perm[i] = perm[j]; perm[j] = t; }
    for (size_t i = 0; i < n; i++) a[perm[i] * 8] = perm[(i + 1) % n] * 8;
    size_t p = perm[0] * 8, loads = 20000000;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < loads; i++) p = a[p];
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / loads;
    printf("working set %6zu KiB: %.1f ns per dependent load (p=%zu)\n", sizes[si] >> 10, ns, p);
    free(a); free(perm);
  }
}
