/* threads.c — the thread policy in one place: OpenMP threads for the library's parallel loops; the machine's
   processor name. */
#include <omp.h>
#include <stdio.h>
#include <string.h>

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

const char *ddpm_cpu_name(char *buf, size_t size) {
    char line[512], *colon;
    if (!buf || size == 0) return "";
    snprintf(buf, size, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0 && (colon = strchr(line, ':')) != NULL) {
            colon += 1 + strspn(colon + 1, " \t");
            snprintf(buf, size, "%.*s", (int)strcspn(colon, "\n"), colon);
            break;
        }
    if (f) fclose(f);
    return buf;
}
