/*
 * The native ceiling of the `bus` bench: libmosquitto (the C client Mosquitto ships) publishing and
 * receiving the same messages as the JS clients. One publisher and one subscriber connection;
 * messages addressed round-robin to `agents` agents; the subscriber holds one wildcard filter.
 *
 *   mosquitto_ceiling HOST PORT MESSAGES QOS EXP AGENTS [WINDOW]
 *
 * Unpaced, a publisher can outrun the subscriber and Mosquitto drops what overflows its queues
 * (QoS 1 beyond max_queued_messages; with libmosquitto's threaded loop a third of QoS 0 too), so
 * the publisher stays at most WINDOW messages (default 1000, as the JS clients) ahead of what the
 * subscriber received.
 *
 * Prints {"received":N,"seconds":S} with S = last receipt - first publish, after all arrived or
 * nothing arrived for 2 s. Built by the bench with `cc -O2 ... -lmosquitto` where mosquitto.h exists.
 */
#include <mosquitto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_long received;
static atomic_llong last_ns;
static atomic_int subscribed;
static atomic_int connected;

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void on_message(struct mosquitto *m, void *u, const struct mosquitto_message *msg) {
  (void)m, (void)u, (void)msg;
  atomic_fetch_add(&received, 1);
  atomic_store(&last_ns, now_ns());
}

static void on_connect(struct mosquitto *m, void *u, int rc) {
  (void)m, (void)u;
  if (rc == 0) atomic_store(&connected, 1);
}

static void on_subscribe(struct mosquitto *m, void *u, int mid, int n, const int *granted) {
  (void)m, (void)u, (void)mid, (void)n, (void)granted;
  atomic_store(&subscribed, 1);
}

/* The subscriber runs libmosquitto's network thread; the publisher drives its own loop from the
 * publishing thread, so each publish is written at once instead of being handed to a second
 * thread through a socket pair (three system calls a message; half the rate on two cores). */
static struct mosquitto *client(const char *role, const char *host, int port, int threaded) {
  char id[64];
  snprintf(id, sizeof id, "myriad-ceiling-%s-%d", role, (int)getpid());
  struct mosquitto *m = mosquitto_new(id, true, NULL);
  if (!m) exit(2);
  /* As many QoS 1 messages in flight as the JS clients allow. */
  mosquitto_int_option(m, MOSQ_OPT_SEND_MAXIMUM, 1000);
  if (mosquitto_connect(m, host, port, 30) != MOSQ_ERR_SUCCESS) {
    fprintf(stderr, "cannot connect to %s:%d\n", host, port);
    exit(2);
  }
  if (threaded && mosquitto_loop_start(m) != MOSQ_ERR_SUCCESS) exit(2);
  return m;
}

int main(int argc, char **argv) {
  if (argc != 7 && argc != 8) {
    fprintf(stderr, "usage: %s HOST PORT MESSAGES QOS EXP AGENTS [WINDOW]\n", argv[0]);
    return 2;
  }
  const char *host = argv[1], *exp = argv[5];
  int port = atoi(argv[2]), qos = atoi(argv[4]), agents = atoi(argv[6]);
  long n = atol(argv[3]);
  long window = argc == 8 ? atol(argv[7]) : 1000;
  mosquitto_lib_init();

  struct mosquitto *sub = client("sub", host, port, 1);
  mosquitto_message_callback_set(sub, on_message);
  mosquitto_subscribe_callback_set(sub, on_subscribe);
  char filter[256];
  snprintf(filter, sizeof filter, "exps/%s/agents/#", exp);
  mosquitto_subscribe(sub, NULL, filter, qos);
  while (!atomic_load(&subscribed)) usleep(1000);

  struct mosquitto *pub = client("pub", host, port, 0);
  mosquitto_connect_callback_set(pub, on_connect);
  while (!atomic_load(&connected)) mosquitto_loop(pub, 10, 1);
  char payload[256], topic[256];
  long long t0 = now_ns();
  for (long i = 0; i < n; i++) {
    /* At most a window ahead of the subscriber; wait on the publisher's socket meanwhile (acks). */
    while (i - atomic_load(&received) > window) mosquitto_loop(pub, 1, 1);
    if ((i & 63) == 0) mosquitto_loop(pub, 0, 1);
    int len = snprintf(payload, sizeof payload, "{\"i\":%ld,\"from\":\"agent-%04ld\",\"text\":\"%.150s\"}", i, (i + 1) % agents,
                       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    snprintf(topic, sizeof topic, "exps/%s/agents/agent-%04ld/agent-chat", exp, i % agents);
    int rc;
    while ((rc = mosquitto_publish(pub, NULL, topic, len, payload, qos, false)) == MOSQ_ERR_NOMEM) usleep(100);
    if (rc != MOSQ_ERR_SUCCESS) {
      fprintf(stderr, "publish: %s\n", mosquitto_strerror(rc));
      return 1;
    }
  }
  long seen = -1;
  /* The last messages may still sit in the publisher's buffer (and its QoS 1 acks in the socket). */
  long long idle_since = now_ns();
  while (atomic_load(&received) < n) {
    long r = atomic_load(&received);
    if (r != seen) {
      seen = r;
      idle_since = now_ns();
    } else if (now_ns() - idle_since > 2000000000LL) {
      break;
    }
    mosquitto_loop(pub, 1, 1);
  }
  printf("{\"received\":%ld,\"seconds\":%.6f}\n", atomic_load(&received), (atomic_load(&last_ns) - t0) / 1e9);
  mosquitto_disconnect(pub);
  mosquitto_disconnect(sub);
  mosquitto_loop_stop(sub, false);
  mosquitto_lib_cleanup();
  return 0;
}
