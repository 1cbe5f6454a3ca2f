/* threads.c — the thread policy in one place: OpenMP threads for the library's parallel loops. */
#include <omp.h>

#include "core.h"

static int dd_threads = 0;

int ddpm_num_cores(void) {
    int n = omp_get_num_procs();
    return n > 0 ? n : 1;
}

void ddpm_set_threads(int n) {
    if (n <= 0) n = ddpm_num_cores();
    dd_threads = n;
    omp_set_num_threads(n);
}

int ddpm_get_threads(void) { return dd_threads > 0 ? dd_threads : omp_get_max_threads(); }
