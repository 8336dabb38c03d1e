/*
 * opengen: a paced openat+close load for benchmarks/bench_live.py.
 *
 *   opengen SECONDS [RATE [PATH [COMM]]]
 *
 * Loops openat(PATH)+close for SECONDS seconds, RATE pairs a second (0: as fast as it
 * can), in bursts of 256 with a sleep whenever it is ahead of the pace. Names itself COMM
 * (default trcx_opengen) so the tracer can select it in the kernel by command name. With
 * GEN_WAIT set in the environment it waits for a line on stdin before it starts.
 * Prints "OPERATIONS SECONDS" when done.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s SECONDS [RATE [PATH [COMM]]]\n", argv[0]);
        return 2;
    }
    double seconds = atof(argv[1]);
    double rate = argc > 2 ? atof(argv[2]) : 0;
    const char *path = argc > 3 ? argv[3] : "/etc/hostname";
    prctl(PR_SET_NAME, argc > 4 ? argv[4] : "trcx_opengen", 0, 0, 0);
    if (getenv("GEN_WAIT")) {
        char line[8];
        if (!fgets(line, sizeof(line), stdin))
            return 1;
    }
    double start = now(), t = start;
    long n = 0;
    while (t - start < seconds) {
        for (int i = 0; i < 256; i++) {
            int fd = openat(AT_FDCWD, path, O_RDONLY);
            if (fd >= 0)
                close(fd);
        }
        n += 256;
        t = now();
        if (rate > 0) {
            double ahead = n / rate - (t - start);
            if (ahead > 0) {
                struct timespec ts = {(time_t)ahead, (long)((ahead - (time_t)ahead) * 1e9)};
                nanosleep(&ts, NULL);
                t = now();
            }
        }
    }
    printf("%ld %.6f\n", n, t - start);
    return 0;
}
