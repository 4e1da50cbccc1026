// The worker: a BullMQ Worker on the queue the API fills. On SIGTERM (a pod scaled in)
// worker.close() stops taking jobs and waits for the jobs it holds, then the process
// exits; keep the pod's terminationGracePeriodSeconds above the longest job.
import { createServer } from 'node:http';
import { Worker } from 'bullmq';
import client from 'prom-client';
import { connection, queueOptions, settings } from './config.js';

const s = settings();
const conn = connection(s);

async function run(job) {
  // Stands in for the real work (a call to another service, a database write).
  await new Promise((resolve) => setTimeout(resolve, s.jobMs));
  return { done: job.id };
}

const worker = new Worker(s.queueName, run, {
  ...queueOptions(s, conn),
  concurrency: s.concurrency,
});
worker.on('ready', () =>
  console.log(JSON.stringify({ msg: 'worker ready', queue: s.queueName, pid: process.pid })),
);
worker.on('failed', (job, err) =>
  console.log(JSON.stringify({ msg: 'job failed', id: job?.id, error: err.message })),
);

// /metrics on RETENTION_METRICS_PORT: the pod's liveness probe connects there, and
// Prometheus may scrape the job counter (any path answers with the metrics).
const registry = new client.Registry();
const jobs = new client.Counter({
  name: 'example_worker_jobs_total',
  help: 'Jobs finished by this worker, by outcome.',
  labelNames: ['outcome'],
  registers: [registry],
});
worker.on('completed', () => jobs.inc({ outcome: 'completed' }));
worker.on('failed', () => jobs.inc({ outcome: 'failed' }));
const metrics = createServer(async (_req, res) => {
  res.writeHead(200, { 'Content-Type': registry.contentType });
  res.end(await registry.metrics());
}).listen(s.metricsPort, s.bindAddress);

let closing = false;
process.on('SIGTERM', async () => {
  if (closing) return;
  closing = true;
  await worker.close();
  metrics.close();
  await conn.quit();
  console.log(JSON.stringify({ msg: 'worker closed', pid: process.pid }));
  process.exit(0);
});
