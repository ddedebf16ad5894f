/**
 * Readiness for `/healthz`: named checks (CLIP loaded, model loaded, each platform connected) evaluated on
 * each request, plus the process phase (starting, running, stopping). 200 with `status: "ok"` when the
 * process runs and every check passes; 503 with the reason otherwise.
 */
import type { Route } from './server.js';
import { readOnlyRoute, sendJson } from './server.js';

/** The outcome of one check. */
export interface CheckResult {
  ok: boolean;
  /** What is there, or what is missing and why. */
  detail: string;
}

/** A readiness check; may be async (bounded by a timeout). */
export type HealthCheck = () => CheckResult | Promise<CheckResult>;

/** Where the process is in its life. */
export type Phase = 'starting' | 'running' | 'stopping';

/** The body of `/healthz`. */
export interface HealthReport {
  status: 'ok' | 'starting' | 'not ready' | 'stopping';
  ready: boolean;
  /** Why it is not ready (null when ready). */
  reason: string | null;
  checks: Record<string, CheckResult>;
}

/** Tracks readiness; see the module comment. */
export class Health {
  private phase: Phase = 'starting';
  private phaseDetail = 'starting up';
  private readonly checks = new Map<string, HealthCheck>();

  constructor(private readonly checkTimeoutMs = 3_000) {}

  /** Sets the phase, with a word on what is going on (e.g. `loading CLIP`). */
  setPhase(phase: Phase, detail?: string): void {
    this.phase = phase;
    this.phaseDetail = detail ?? phase;
  }

  /** The current phase. */
  get current(): Phase {
    return this.phase;
  }

  /** Adds or replaces a named check. */
  setCheck(name: string, check: HealthCheck): void {
    this.checks.set(name, check);
  }

  /** Evaluates the phase and every check. */
  async report(): Promise<HealthReport> {
    const checks: Record<string, CheckResult> = {};
    await Promise.all([...this.checks].map(async ([name, check]) => {
      checks[name] = await this.run(check);
    }));
    const failing = Object.entries(checks).filter(([, c]) => !c.ok).map(([name, c]) => `${name}: ${c.detail}`);
    if (this.phase === 'stopping') return { status: 'stopping', ready: false, reason: 'shutting down', checks };
    if (this.phase === 'starting') {
      return { status: 'starting', ready: false, reason: [this.phaseDetail, ...failing].join('; '), checks };
    }
    if (failing.length) return { status: 'not ready', ready: false, reason: failing.join('; '), checks };
    return { status: 'ok', ready: true, reason: null, checks };
  }

  /** The `/healthz` route (GET and HEAD). */
  route(): Route {
    return readOnlyRoute('/healthz', async (_req, res) => {
      const report = await this.report();
      sendJson(res, report.ready ? 200 : 503, report);
    });
  }

  private async run(check: HealthCheck): Promise<CheckResult> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        Promise.resolve().then(check),
        new Promise<CheckResult>((resolve) => {
          timer = setTimeout(() => resolve({ ok: false, detail: `no answer within ${this.checkTimeoutMs} ms` }), this.checkTimeoutMs);
        }),
      ]);
    } catch (err) {
      return { ok: false, detail: (err as Error).message };
    } finally {
      clearTimeout(timer);
    }
  }
}
