/* Replays length-prefixed exporter datagrams (4-byte big-endian length, then the bytes, as
 * lab/flows/udp-sink.py writes them) to a UDP port on loopback, as fast as possible or at a
 * fixed rate.  Built by bench/flows into /tmp at run time (gcc -O2); a bench tool only.
 *
 *   flow-replay FILE HOST PORT [RATE [LOOPS]]
 *
 * RATE: datagrams per second, 0 = as fast as the kernel takes them (sendmmsg, 64 at a time).
 * LOOPS: send the file this many times (default 1).  HOST must be loopback.
 * Prints one line: datagrams bytes errors first_send_ns last_send_ns (CLOCK_MONOTONIC).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: flow-replay FILE HOST PORT [RATE [LOOPS]]\n");
    return 2;
  }
  double rate = argc > 4 ? atof(argv[4]) : 0;
  long loops = argc > 5 ? atol(argv[5]) : 1;
  FILE *f = fopen(argv[1], "rb");
  if (!f) { perror(argv[1]); return 2; }
  struct stat st;
  fstat(fileno(f), &st);
  unsigned char *data = malloc(st.st_size ? st.st_size : 1);
  if (fread(data, 1, st.st_size, f) != (size_t)st.st_size) { perror("read"); return 2; }
  fclose(f);
  size_t n = 0, cap = 1 << 16;
  struct iovec *iov = malloc(cap * sizeof *iov);
  for (size_t at = 0; at + 4 <= (size_t)st.st_size;) {
    uint32_t len = (uint32_t)data[at] << 24 | data[at + 1] << 16 | data[at + 2] << 8 | data[at + 3];
    if (at + 4 + len > (size_t)st.st_size) break;
    if (n == cap) iov = realloc(iov, (cap *= 2) * sizeof *iov);
    iov[n].iov_base = data + at + 4;
    iov[n].iov_len = len;
    n++;
    at += 4 + len;
  }
  struct sockaddr_storage ss;
  socklen_t sl;
  int fam;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, argv[2], &s4->sin_addr) == 1) {
    if ((ntohl(s4->sin_addr.s_addr) >> 24) != 127) { fprintf(stderr, "HOST must be loopback\n"); return 2; }
    s4->sin_family = fam = AF_INET; s4->sin_port = htons(atoi(argv[3])); sl = sizeof *s4;
  } else if (inet_pton(AF_INET6, argv[2], &s6->sin6_addr) == 1 && IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr)) {
    s6->sin6_family = fam = AF_INET6; s6->sin6_port = htons(atoi(argv[3])); sl = sizeof *s6;
  } else { fprintf(stderr, "HOST must be a loopback address\n"); return 2; }
  int fd = socket(fam, SOCK_DGRAM, 0);
  int sndbuf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  if (connect(fd, (struct sockaddr *)&ss, sl) < 0) { perror("connect"); return 2; }
  struct mmsghdr msgs[BATCH];
  memset(msgs, 0, sizeof msgs);
  uint64_t sent = 0, bytes = 0, errors = 0, total = (uint64_t)n * (uint64_t)loops;
  uint64_t first = now_ns(), last = first;
  for (uint64_t i = 0; i < total;) {
    size_t want = BATCH;
    if (rate > 0) {
      /* datagram i is due at first + i / rate: send what is due, else sleep until the next. */
      uint64_t due = first + (uint64_t)((double)i * 1e9 / rate);
      uint64_t t = now_ns();
      if (t < due) {
        struct timespec ts = {(time_t)(due / 1000000000ull), (long)(due % 1000000000ull)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        t = now_ns();
      }
      uint64_t upto = (uint64_t)((double)(t - first) * rate / 1e9) + 1;
      want = upto > i ? (size_t)(upto - i) : 1;
      if (want > BATCH) want = BATCH;
    }
    if (want > total - i) want = (size_t)(total - i);
    for (size_t k = 0; k < want; k++) {
      msgs[k].msg_hdr.msg_iov = &iov[(i + k) % n];
      msgs[k].msg_hdr.msg_iovlen = 1;
    }
    int r = sendmmsg(fd, msgs, want, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      errors++;
      if (errno == ENOBUFS || errno == EAGAIN) { usleep(50); continue; }
      /* ECONNREFUSED: nobody listening (an ICMP error from an earlier datagram); skip one. */
      i++;
      continue;
    }
    for (int k = 0; k < r; k++) bytes += iov[(i + k) % n].iov_len;
    sent += r;
    i += r;
  }
  last = now_ns();
  printf("%llu %llu %llu %llu %llu\n", (unsigned long long)sent, (unsigned long long)bytes,
         (unsigned long long)errors, (unsigned long long)first, (unsigned long long)last);
  return 0;
}
