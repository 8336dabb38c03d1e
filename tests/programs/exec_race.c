/* Races execve's pathname: a second thread keeps swapping the buffer between two
 * programs of the same length while the main thread calls execve on it, so the
 * kernel may execute a different program than the one a tracer read at syscall
 * entry. Forks ATTEMPTS children, each doing one racing execve; exits 0. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char path[16] = "/bin/true";
static volatile int stop;

static void *flip(void *unused) {
    (void)unused;
    while (!stop) {
        memcpy(path, "/bin/echo", 10);
        __asm__ volatile("" ::: "memory"); /* keep both stores: neither is dead */
        memcpy(path, "/bin/true", 10);
        __asm__ volatile("" ::: "memory");
    }
    return NULL;
}

int main(int argc, char **argv) {
    int attempts = argc > 1 ? atoi(argv[1]) : 200;
    for (int i = 0; i < attempts; i++) {
        pid_t child = fork();
        if (child == 0) {
            pthread_t flipper;
            pthread_create(&flipper, NULL, flip, NULL);
            usleep(200); /* let the flipper run on the other CPU */
            char *args[] = {"racer-child", NULL};
            execve(path, args, NULL);
            _exit(127);
        }
        waitpid(child, NULL, 0);
    }
    return 0;
}
