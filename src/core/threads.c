/* threads.c — the thread policy in one place: how many OpenMP threads the library's parallel loops, oneDNN's
   primitives and OpenBLAS (its OpenMP build reads omp_get_max_threads() on every call) run with; the
   machine's processor name.

   FIXED. ddpm_set_threads(n > 0), or, by default, OMP_NUM_THREADS when the environment sets it: n threads.

   AUTO (the default otherwise, and ddpm_set_threads(n <= 0) without OMP_NUM_THREADS). OpenMP threads that find their core taken by another
   process spin at every barrier while the one holding that core is preempted, so a step on all cores of a
   shared machine can take several times as long as the same step on the cores left free. dd_threads_update
   (called by ddpm_model_forward, at most once per DD_THREADS_PERIOD) measures what other processes use of the
   cores this process may run on, and sets the count to those left free:

       other  = (busy time of our CPUs in /proc/stat - this process's CPU time) / wall time   [cores]
       target = clamp(floor(cores - other + 0.3), 1, cores)

   The 0.3 keeps all cores under light background load (a shell, a logger). The first call has no interval
   to measure yet; it counts the tasks other processes have running now (procs_running of /proc/stat less
   this process's running threads). Where /proc is unreadable the count stays at all cores. The check reads
   two small /proc files (tens of microseconds), so it costs nothing next to a network call. */
#define _GNU_SOURCE
#include <dirent.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core.h"

#define DD_THREADS_PERIOD 0.25   /* seconds between two load checks */

static pthread_mutex_t dd_threads_lock = PTHREAD_MUTEX_INITIALIZER;
static int dd_fixed = -1;          /* > 0: fixed count; 0: auto; -1: not decided yet (read OMP_NUM_THREADS) */
static int dd_current = 0;         /* the count set last (auto) */
static int dd_have_sample = 0;     /* a previous sample exists */
static double dd_prev_wall, dd_prev_own, dd_prev_busy;

int ddpm_num_cores(void) {
    int n = omp_get_num_procs();
    return n > 0 ? n : 1;
}

static double dd_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double dd_own_cpu_seconds(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1.0;
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)ru.ru_stime.tv_usec;
}

int dd_threads_target(int cores, double other, int max) {
    if (max < 1) max = 1;
    if (cores < 1) cores = 1;
    if (!(other >= 0.0)) other = 0.0;   /* NaN or negative: nobody else */
    double free_cores = (double)cores - other + 0.3;
    int t = free_cores < 1.0 ? 1 : (int)free_cores;
    if (t > max) t = max;
    return t < 1 ? 1 : t;
}

/* Busy seconds of the CPUs this process may run on (from /proc/stat's per-CPU lines), and procs_running. */
static int dd_read_proc_stat(double *busy, int *running) {
    cpu_set_t set;
    int have_set = sched_getaffinity(0, sizeof set, &set) == 0;
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    char line[512];
    unsigned long long sum = 0;
    int cpus = 0;
    *running = -1;
    while (fgets(line, sizeof line, f)) {
        int cpu;
        unsigned long long v[8] = {0};
        if (strncmp(line, "cpu", 3) == 0 && line[3] >= '0' && line[3] <= '9') {
            if (sscanf(line + 3, "%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0], &v[1], &v[2], &v[3],
                       &v[4], &v[5], &v[6], &v[7]) < 9)
                continue;
            if (have_set && (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &set))) continue;
            /* user nice system idle iowait irq softirq steal: busy = all but idle and iowait */
            sum += v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
            cpus++;
        } else if (strncmp(line, "procs_running ", 14) == 0) {
            *running = atoi(line + 14);
        }
    }
    fclose(f);
    if (cpus == 0) return -1;
    long hz = sysconf(_SC_CLK_TCK);
    *busy = (double)sum / (double)(hz > 0 ? hz : 100);
    return 0;
}

/* This process's threads in state R (running or runnable) now. */
static int dd_own_running(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return 1;
    int n = 0;
    struct dirent *e;
    char path[64], buf[256];
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/self/task/%.20s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = 0;
        const char *close = strrchr(buf, ')');   /* "pid (comm) S ..." — comm may hold spaces */
        if (close && close[1] == ' ' && close[2] == 'R') n++;
    }
    closedir(d);
    return n > 0 ? n : 1;
}

/* Measures and sets the count (auto mode); the lock is held. */
static void dd_threads_measure(void) {
    const int cores = ddpm_num_cores();
    double busy = 0.0, wall = dd_now(), own = dd_own_cpu_seconds();
    int running = -1;
    if (cores < 2 || own < 0.0 || dd_read_proc_stat(&busy, &running) != 0) {
        dd_current = cores;
    } else if (!dd_have_sample || wall - dd_prev_wall <= 0.0) {
        int other = running >= 0 ? running - dd_own_running() : 0;
        dd_current = dd_threads_target(cores, other > 0 ? (double)other : 0.0, cores);
    } else {
        double other = ((busy - dd_prev_busy) - (own - dd_prev_own)) / (wall - dd_prev_wall);
        dd_current = dd_threads_target(cores, other, cores);
    }
    if (own >= 0.0) {
        dd_prev_wall = wall;
        dd_prev_own = own;
        dd_prev_busy = busy;
        dd_have_sample = busy > 0.0;
    }
    omp_set_num_threads(dd_current);
}

/* Decides fixed or auto on first use: OMP_NUM_THREADS, when set to a count, fixes it. */
static void dd_threads_decide(void) {
    if (dd_fixed >= 0) return;
    const char *env = getenv("OMP_NUM_THREADS");
    int n = env ? atoi(env) : 0;
    dd_fixed = n > 0 ? n : 0;
}

static double dd_last_check = -1.0;

/* Auto mode: measures when `now` or the period has passed since the last check; the lock is held. */
static void dd_threads_check(int now) {
    dd_threads_decide();
    if (dd_fixed != 0) return;
    const double t = dd_now();
    if (now || dd_last_check < 0.0 || t - dd_last_check >= DD_THREADS_PERIOD) {
        dd_last_check = t;
        dd_threads_measure();
    }
}

void dd_threads_update(void) {
    if (pthread_mutex_trylock(&dd_threads_lock) != 0) return;   /* another thread is checking */
    dd_threads_check(0);
    pthread_mutex_unlock(&dd_threads_lock);
}

void dd_threads_update_now(void) {
    pthread_mutex_lock(&dd_threads_lock);
    dd_threads_check(1);
    pthread_mutex_unlock(&dd_threads_lock);
}

void dd_threads_forget(void) {
    pthread_mutex_lock(&dd_threads_lock);
    dd_have_sample = 0;
    dd_last_check = -1.0;
    pthread_mutex_unlock(&dd_threads_lock);
}

void ddpm_set_threads(int n) {
    pthread_mutex_lock(&dd_threads_lock);
    dd_fixed = n > 0 ? n : -1;   /* n <= 0: the default again (OMP_NUM_THREADS, else auto) */
    dd_threads_decide();
    dd_have_sample = 0;
    dd_last_check = -1.0;
    if (dd_fixed > 0) omp_set_num_threads(dd_fixed);
    pthread_mutex_unlock(&dd_threads_lock);
    if (n <= 0) dd_threads_update();
}

int ddpm_threads_auto(void) {
    pthread_mutex_lock(&dd_threads_lock);
    dd_threads_decide();
    int a = dd_fixed == 0;
    pthread_mutex_unlock(&dd_threads_lock);
    return a;
}

int ddpm_get_threads(void) {
    pthread_mutex_lock(&dd_threads_lock);
    dd_threads_decide();
    int n = dd_fixed > 0 ? dd_fixed : (dd_current > 0 ? dd_current : omp_get_max_threads());
    pthread_mutex_unlock(&dd_threads_lock);
    return n;
}

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
