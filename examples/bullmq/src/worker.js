// The worker: a BullMQ Worker on the queue the API fills. On SIGTERM (a pod scaled in)
// worker.close() stops taking jobs and waits for the jobs it holds, then the process
// exits; keep the pod's terminationGracePeriodSeconds above the longest job.
import { Worker } from 'bullmq';
import { connection, queueOptions, settings } from './config.js';

const s = settings();
const conn = connection(s);

async function process_(job) {
  // Stands in for the real work (a call to another service, a database write).
  await new Promise((resolve) => setTimeout(resolve, s.jobMs));
  return { done: job.id };
}

const worker = new Worker(s.queueName, process_, {
  ...queueOptions(s, conn),
  concurrency: s.concurrency,
});
worker.on('ready', () =>
  console.log(JSON.stringify({ msg: 'worker ready', queue: s.queueName, pid: process.pid })),
);
worker.on('failed', (job, err) =>
  console.log(JSON.stringify({ msg: 'job failed', id: job?.id, error: err.message })),
);

let closing = false;
process.on('SIGTERM', async () => {
  if (closing) return;
  closing = true;
  await worker.close();
  await conn.quit();
  console.log(JSON.stringify({ msg: 'worker closed', pid: process.pid }));
  process.exit(0);
});
