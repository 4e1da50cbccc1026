// Settings of the example, from the environment retention-stack sets on the pods
// (docs/contract.md); each has a default for a process started by hand.
import { Cluster, Redis } from 'ioredis';

export function settings(env = process.env) {
  return {
    redisUrl: env.RETENTION_REDIS_URL ?? 'redis://127.0.0.1:6379/0',
    redisCluster: (env.RETENTION_REDIS_CLUSTER ?? 'false') === 'true',
    redisPassword: env.RETENTION_REDIS_PASSWORD || undefined,
    queueName: env.RETENTION_QUEUE_NAME ?? 'messages',
    queuePrefix: env.RETENTION_QUEUE_PREFIX ?? 'bull',
    httpPort: Number(env.RETENTION_HTTP_PORT ?? 8080),
    metricsPort: Number(env.RETENTION_METRICS_PORT ?? 9090),
    bindAddress: env.RETENTION_BIND_ADDRESS ?? '0.0.0.0',
    concurrency: Number(env.RETENTION_WORKER_CONCURRENCY ?? 4),
    jobMs: Number(env.EXAMPLE_JOB_MS ?? 50),
  };
}

// One ioredis connection (or Cluster) for BullMQ. maxRetriesPerRequest must be null
// for a Worker's blocking commands; the password comes from the environment only.
export function connection(s) {
  const url = new URL(s.redisUrl);
  const options = { password: s.redisPassword, maxRetriesPerRequest: null };
  if (s.redisCluster) {
    return new Cluster([{ host: url.hostname, port: Number(url.port || 6379) }], {
      redisOptions: options,
    });
  }
  const db = Number(url.pathname.replace('/', '') || 0);
  return new Redis({ host: url.hostname, port: Number(url.port || 6379), db, ...options });
}

// Settings that name the queue, shared by the API (producer) and the worker.
export function queueOptions(s, conn) {
  return { connection: conn, prefix: s.queuePrefix };
}
