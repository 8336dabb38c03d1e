/* Races connect's address: a second thread keeps swapping the sockaddr buffer between two
 * ports of 127.0.0.1 while the main thread connects UDP sockets with it (a UDP connect
 * sends nothing; it sets the socket's peer), so the kernel may connect to another port
 * than the one a tracer read at syscall entry. Usage: connect_race PORT_A PORT_B
 * [ATTEMPTS]; exits 0. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in addr;
static volatile unsigned short ports[2];
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
    volatile unsigned short *port = &addr.sin_port;
    while (!stop) {
        *port = ports[1];
        __asm__ volatile("" ::: "memory");
        *port = ports[0];
        __asm__ volatile("" ::: "memory");
    }
    return NULL;
}

int main(int argc, char **argv) {
    ports[0] = htons(argc > 1 ? atoi(argv[1]) : 40001);
    ports[1] = htons(argc > 2 ? atoi(argv[2]) : 40002);
    int attempts = argc > 3 ? atoi(argv[3]) : 2000;
    addr.sin_family = AF_INET;
    addr.sin_port = ports[0];
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    pin(0);
    pthread_t flipper;
    pthread_create(&flipper, NULL, flip, NULL);
    usleep(1000); /* let the flipper run on the other CPU */
    for (int i = 0; i < attempts; i++) {
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        if (fd < 0)
            return 1;
        connect(fd, (struct sockaddr *)&addr, sizeof(addr));
        close(fd);
    }
    stop = 1;
    pthread_join(flipper, NULL);
    return 0;
}
