// The timer benchmark's peers: schedule N delayed jobs that all come due at
// the same instant, then drain them with workers, as a Node shop would with
// BullMQ (Redis) or pg-boss (PostgreSQL). Prints key=value lines.
//
//   node timers.mjs bullmq N REDIS_PORT
//   node timers.mjs pgboss N POSTGRES_URL
//
// Each job carries what a delayed message needs (customer, order, template);
// the handler does what firing into an outbox does for these queues: the job
// is taken, handled and acknowledged (completed) in the store.
import { performance } from "node:perf_hooks";

const [mode, nArg, conn] = process.argv.slice(2);
const N = parseInt(nArg, 10);
const LEAD_MS = 1000; // after scheduling ends, everything is due this much later
const lat = new Float64Array(N);
let done = 0;
let dueAt = 0;
let lastDone = 0;

function payload(i) {
  return { customer: "k" + (i % 10000), order: "o" + i, template: "order_confirmation" };
}

function report(prefix, scheduleMs) {
  const sorted = Array.from(lat.subarray(0, done)).sort((a, b) => a - b);
  const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  const drainMs = lastDone - dueAt;
  console.log(`${prefix}_n=${N}`);
  console.log(`${prefix}_schedule_per_s=${Math.round(N / (scheduleMs / 1000))}`);
  console.log(`${prefix}_fired=${done}`);
  console.log(`${prefix}_fire_per_s=${Math.round(done / (drainMs / 1000))}`);
  console.log(`${prefix}_lateness_p50_ms=${Math.round(q(0.5))}`);
  console.log(`${prefix}_lateness_p99_ms=${Math.round(q(0.99))}`);
}

// Every job is due at one instant shortly after scheduling ends: a first,
// timed round of 5,000 jobs on a scratch queue estimates how long
// scheduling N takes.
async function dueInstant(scheduleChunk) {
  const t = performance.now();
  for (let i = 0; i < 5000; i += 1000) await scheduleChunk(i);
  const perJob = (performance.now() - t) / 5000;
  return Date.now() + N * perJob * 1.5 + LEAD_MS;
}

async function bullmq() {
  const { Queue, Worker } = await import("bullmq");
  const connection = { host: "127.0.0.1", port: parseInt(conn, 10) };
  const queue = new Queue("bench", { connection });
  const scratch = new Queue("scratch", { connection });
  await queue.obliterate({ force: true }).catch(() => {});
  const far = Date.now() + 3600_000;
  const estimate = await dueInstant(async (i) => {
    const jobs = [];
    for (let k = i; k < i + 1000; k++) jobs.push({ name: "msg", data: payload(k), opts: { delay: far - Date.now() } });
    await scratch.addBulk(jobs);
  });
  await scratch.obliterate({ force: true }).catch(() => {});
  await scratch.close();
  const t0 = performance.now();
  for (let i = 0; i < N; i += 1000) {
    const jobs = [];
    for (let k = i; k < Math.min(N, i + 1000); k++)
      jobs.push({ name: "msg", data: payload(k), opts: { delay: Math.max(0, estimate - Date.now()), removeOnComplete: true } });
    await queue.addBulk(jobs);
  }
  const scheduleMs = performance.now() - t0;
  dueAt = estimate;
  await new Promise((r) => setTimeout(r, Math.max(0, dueAt - Date.now() - 200)));
  const finished = new Promise((resolve) => {
    const worker = new Worker("bench", async () => {}, { connection, concurrency: 200, drainDelay: 1 });
    worker.on("completed", () => {
      const now = Date.now();
      lat[done++] = now - dueAt;
      lastDone = now;
      if (done === N) resolve(worker);
    });
  });
  const worker = await finished;
  await worker.close();
  await queue.close();
  report("bullmq", scheduleMs);
}

async function pgboss() {
  const { PgBoss } = await import("pg-boss").then((m) => ({ PgBoss: m.default || m.PgBoss }));
  const boss = new PgBoss({ connectionString: conn, max: 8 });
  boss.on("error", (e) => console.error("pg-boss:", e.message));
  await boss.start();
  await boss.createQueue("bench").catch(() => {});
  await boss.createQueue("scratch").catch(() => {});
  const far = new Date(Date.now() + 3600_000);
  const estimate = new Date(await dueInstant(async (i) => {
    const jobs = [];
    for (let k = i; k < i + 1000; k++) jobs.push({ name: "scratch", data: payload(k), startAfter: far });
    await boss.insert(jobs);
  }));
  await boss.deleteQueue("scratch").catch(() => {});
  const t0 = performance.now();
  for (let i = 0; i < N; i += 1000) {
    const jobs = [];
    for (let k = i; k < Math.min(N, i + 1000); k++)
      jobs.push({ name: "bench", data: payload(k), startAfter: estimate });
    await boss.insert(jobs);
  }
  const scheduleMs = performance.now() - t0;
  dueAt = estimate.getTime();
  await new Promise((r) => setTimeout(r, Math.max(0, dueAt - Date.now() - 200)));
  await new Promise((resolve) => {
    const handler = async (jobs) => {
      const now = Date.now();
      for (let j = 0; j < jobs.length; j++) lat[done++] = now - dueAt;
      lastDone = now;
      if (done >= N) resolve();
    };
    // several workers polling with large batches: pg-boss at its fastest
    for (let w = 0; w < 4; w++) boss.work("bench", { batchSize: 500, pollingIntervalSeconds: 0.5 }, handler);
  });
  await boss.stop({ graceful: false, wait: false }).catch(() => {});
  report("pgboss", scheduleMs);
  process.exit(0);
}

if (mode === "bullmq") await bullmq();
else if (mode === "pgboss") await pgboss();
else {
  console.error("usage: node timers.mjs bullmq|pgboss N CONN");
  process.exit(2);
}
process.exit(0);
