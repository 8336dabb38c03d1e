/* Races open's pathname: a second thread keeps swapping the buffer between two paths of
 * the same length while the main thread opens it, so the kernel may open another file
 * than the one a tracer read at syscall entry. Usage: open_race PATH_A PATH_B [ATTEMPTS]
 * (PATH_A and PATH_B of the same length, both existing); exits 0. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[256];
static char first[256], second[256];
static size_t size;
static volatile int stop;

/* Keep the two threads on different CPUs, so that the flipper runs while the call is made. */
static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % (int)sysconf(_SC_NPROCESSORS_ONLN), &set);
    sched_setaffinity(0, sizeof(set), &set);
}

static void *flip(void *unused) {
    (void)unused;
    pin(1);
    while (!stop) {
        memcpy(path, second, size);
        __asm__ volatile("" ::: "memory"); /* keep both stores: neither is dead */
        memcpy(path, first, size);
        __asm__ volatile("" ::: "memory");
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3 || strlen(argv[1]) != strlen(argv[2]) || strlen(argv[1]) >= sizeof(path)) {
        fprintf(stderr, "usage: open_race PATH_A PATH_B [ATTEMPTS] (paths of the same length)\n");
        return 2;
    }
    size = strlen(argv[1]) + 1;
    memcpy(first, argv[1], size);
    memcpy(second, argv[2], size);
    memcpy(path, first, size);
    int attempts = argc > 3 ? atoi(argv[3]) : 2000;
    pin(0);
    pthread_t flipper;
    pthread_create(&flipper, NULL, flip, NULL);
    usleep(1000); /* let the flipper run on the other CPU */
    for (int i = 0; i < attempts; i++) {
        int fd = open(path, O_RDONLY);
        if (fd >= 0)
            close(fd);
    }
    stop = 1;
    pthread_join(flipper, NULL);
    return 0;
}
