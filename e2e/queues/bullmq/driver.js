// A BullMQ producer and a manual consumer (Worker.getNextJob) driven step by step from a
// test: one JSON command per stdin line, one JSON answer per stdout line. The answers of
// "counts" are what BullMQ itself reports, the reference the autoscaler's reading is
// compared with. Runs on BullMQ 5 and 6 (e2e/queues/bullmq5, examples/bullmq).
import { createInterface } from 'node:readline';
import { Queue, Worker } from 'bullmq';
import { Cluster, Redis } from 'ioredis';

const env = process.env;
const url = new URL(env.RETENTION_REDIS_URL);
const options = { maxRetriesPerRequest: null };
const conn =
  env.RETENTION_REDIS_CLUSTER === 'true'
    ? new Cluster([{ host: url.hostname, port: Number(url.port) }], { redisOptions: options })
    : new Redis({ host: url.hostname, port: Number(url.port), ...options });
const opts = { connection: conn, prefix: env.RETENTION_QUEUE_PREFIX };
const queue = new Queue(env.RETENTION_QUEUE_NAME, opts);
const worker = new Worker(env.RETENTION_QUEUE_NAME, null, { ...opts, autorun: false });
const TOKEN = 'driver';
const held = [];
let added = 0;

async function counts() {
  const now = Date.now();
  const reported = await queue.getJobCounts();
  const delayed = await queue.getDelayed();
  const isDue = (job) => job.timestamp + (job.delay ?? 0) <= now;
  // BullMQ 6 counts due delayed jobs itself (strictly before the cutoff); 5 cannot.
  const due =
    typeof queue.getDelayedCount === 'function' && queue.getDelayedCount.length > 0
      ? await queue.getDelayedCount(now + 1)
      : delayed.filter(isDue).length;
  const since = (job) => (job ? job.timestamp + (job.opts?.delay ?? 0) : null);
  const waiting = await queue.getWaiting();
  const prioritized = await queue.getPrioritized(0, 0);
  const dueJobs = delayed.filter(isDue).map((job) => job.timestamp + job.delay);
  const candidates = [
    since(waiting[waiting.length - 1]),
    since(prioritized[0]),
    dueJobs.length ? Math.min(...dueJobs) : null,
  ].filter((at) => at !== null);
  return {
    counts: reported,
    due,
    added,
    now,
    oldestSince: candidates.length ? Math.min(...candidates) : null,
  };
}

const ops = {
  async add({ n = 1, opts: jobOpts = {} }) {
    const ids = [];
    for (let i = 0; i < n; i++) ids.push((await queue.add('job', { i }, jobOpts)).id);
    added += n;
    return ids;
  },
  async take({ n = 1 }) {
    const ids = [];
    for (let i = 0; i < n; i++) {
      const job = await worker.getNextJob(TOKEN, { block: false });
      if (!job) break;
      held.push(job);
      ids.push(job.id);
    }
    return ids;
  },
  async finish({ n = 1, fail = false }) {
    const done = held.splice(0, n);
    for (const job of done) {
      if (fail) await job.moveToFailed(new Error('failed on purpose'), TOKEN, false);
      else await job.moveToCompleted('ok', TOKEN, false);
    }
    return done.map((job) => job.id);
  },
  counts,
  pause: () => queue.pause(),
  resume: () => queue.resume(),
  version: async () => (await import('bullmq/package.json', { with: { type: 'json' } })).default.version,
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const command = JSON.parse(line);
  if (command.op === 'quit') break;
  try {
    const result = await ops[command.op](command);
    process.stdout.write(JSON.stringify({ result: result ?? null }) + '\n');
  } catch (err) {
    process.stdout.write(JSON.stringify({ error: String(err?.stack ?? err) }) + '\n');
  }
}
await worker.close();
await queue.close();
await conn.quit();
process.stdout.write(JSON.stringify({ result: 'bye' }) + '\n');
process.exit(0);
