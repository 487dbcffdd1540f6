/**
 * Starts and supervises the enclave process (design §1): readiness, restart with exponential backoff after
 * a crash, clean shutdown. The host never imports enclave code; it only knows the bundle's path.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import { EkmsError, TransportError } from '../shared/errors.js';

export interface SupervisorOptions {
  /** Path of the enclave bundle (dist/enclave.mjs). */
  readonly entry: string;
  /** Address the enclave listens on (`unix:PATH`). */
  readonly listen: string;
  readonly attestor: string;
  /** The host's storage socket the enclave keeps its sealed state through (`unix:PATH`), if any. */
  readonly storage?: string;
  readonly logger: Logger;
  /** First restart delay; doubles per consecutive crash up to `maxBackoffMs`. */
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** A child that lived this long resets the backoff. */
  readonly stableAfterMs?: number;
  readonly readyTimeoutMs?: number;
  readonly logLevel?: string;
  /** More arguments for the enclave (e.g. --sim-ca FILE, --admin-key HEX). */
  readonly extraArgs?: readonly string[];
}

/** What the enclave announced in its ready line. */
export interface EnclaveReadyInfo {
  readonly version: string;
  readonly attestor: string;
  readonly measurement: string;
  readonly listen: string;
  readonly pid: number;
  /** True when the enclave waits for its custodians' shares (docs/custody.md); it serves no key operation yet. */
  readonly locked: boolean;
}

export type SupervisorState = 'idle' | 'starting' | 'ready' | 'backoff' | 'stopping' | 'stopped';

function isReadyLine(x: unknown): x is Omit<EnclaveReadyInfo, 'pid'> & { event: 'ready' } {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as Record<string, unknown>;
  return (
    r['event'] === 'ready' &&
    typeof r['version'] === 'string' &&
    typeof r['attestor'] === 'string' &&
    typeof r['measurement'] === 'string' &&
    typeof r['listen'] === 'string'
  );
}

function isErrorLine(x: unknown): x is { event: 'error'; code: string; message: string } {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as Record<string, unknown>;
  return (
    r['event'] === 'error' &&
    typeof r['code'] === 'string' &&
    /^[A-Z][A-Z0-9_]{2,63}$/.test(r['code']) &&
    typeof r['message'] === 'string'
  );
}

/**
 * Emits `ready` (EnclaveReadyInfo) each time an enclave process becomes ready and `exit` ({ code, signal })
 * each time one exits.
 */
export class EnclaveSupervisor extends EventEmitter {
  private child: ChildProcess | undefined;
  /** Callers of waitReady() still waiting: one per client connection held during a restart. */
  private readonly waiters = new Set<{
    resolve(info: EnclaveReadyInfo): void;
    reject(err: EkmsError): void;
    timer: NodeJS.Timeout;
  }>();
  private _state: SupervisorState = 'idle';
  private _info: EnclaveReadyInfo | undefined;
  private backoffMs: number;
  private restartTimer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  /** Whether any enclave process has become ready; until then an exit is a start-up failure, not a crash. */
  private everReady = false;
  /** The error the starting enclave announced on stdout before exiting (`{"event":"error",code,message}`). */
  private startError: { code: string; message: string } | undefined;
  private readonly log: Logger;
  /** Number of enclave processes started (1 + restarts). */
  launches = 0;

  constructor(private readonly opts: SupervisorOptions) {
    super();
    this.log = opts.logger.child({ component: 'supervisor' });
    this.backoffMs = opts.initialBackoffMs ?? 100;
  }

  get state(): SupervisorState {
    return this._state;
  }

  /** The ready enclave's announcement, or undefined while none is ready. */
  get info(): EnclaveReadyInfo | undefined {
    return this._state === 'ready' ? this._info : undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Starts the first enclave process and resolves when it is ready. If that process exits before it is ready, no
   * restart is attempted.
   * @throws TransportError ENCLAVE_UNAVAILABLE if it does not become ready in time or exits first; EkmsError with
   *   the enclave's own code (e.g. CONFIG_INVALID) when it announced why it could not start.
   */
  async start(): Promise<EnclaveReadyInfo> {
    this.launch();
    return this.waitReady(this.opts.readyTimeoutMs ?? 15_000);
  }

  /**
   * Resolves when an enclave is ready (immediately if one is).
   * @throws TransportError ENCLAVE_UNAVAILABLE on timeout or when stopped.
   */
  waitReady(timeoutMs: number): Promise<EnclaveReadyInfo> {
    const info = this.info;
    if (info) return Promise.resolve(info);
    if (this._state === 'stopping' || this._state === 'stopped') {
      return Promise.reject(new TransportError('HOST_SHUTTING_DOWN', 'the host is shutting down'));
    }
    // A set rather than one 'ready' listener each: up to maxConnections clients may wait during a restart, and
    // stop() must be able to release them all at once (their timers would otherwise outlive the host).
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          reject(
            new TransportError('ENCLAVE_UNAVAILABLE', `the enclave was not ready within ${timeoutMs} ms`),
          );
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  private settleWaiters(outcome: EnclaveReadyInfo | EkmsError): void {
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      if (outcome instanceof EkmsError) w.reject(outcome);
      else w.resolve(outcome);
    }
    this.waiters.clear();
  }

  private launch(): void {
    this._state = 'starting';
    this.launches += 1;
    this.startedAt = Date.now();
    const args = [
      // Simulation only (profiling, docs/performance.md): extra Node flags for the enclave process, e.g.
      // EKMS_ENCLAVE_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof". On hardware the enclave image is not started
      // by this supervisor; in simulation the host controls the enclave process anyway.
      ...(process.env['EKMS_ENCLAVE_NODE_FLAGS']?.split(' ').filter((f) => f !== '') ?? []),
      this.opts.entry,
      '--listen',
      this.opts.listen,
      '--attestor',
      this.opts.attestor,
      // The enclave exits when its stdin (a pipe we hold) reaches EOF, i.e. when this process is gone for any
      // reason, SIGKILL included: no orphaned enclave keeps serving on a socket nobody supervises.
      '--exit-with-parent',
    ];
    if (this.opts.storage) args.push('--storage', this.opts.storage);
    if (this.opts.logLevel) args.push('--log-level', this.opts.logLevel);
    if (this.opts.extraArgs) args.push(...this.opts.extraArgs);
    const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    this.child = child;
    // Pipe errors must not become uncaught exceptions in the host; the child's exit is what counts.
    child.stdin?.on('error', () => {});
    child.stdout?.on('error', () => {});
    this.log.info({ pid: child.pid, launch: this.launches }, 'enclave starting');
    const readyTimer = setTimeout(() => {
      if (this.child === child && this._state === 'starting') {
        this.log.error({ pid: child.pid }, 'enclave not ready in time; killing');
        child.kill('SIGKILL');
      }
    }, this.opts.readyTimeoutMs ?? 15_000);
    const lines = child.stdout ? createInterface({ input: child.stdout }) : undefined;
    lines?.on('line', (line) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        return;
      }
      if (isErrorLine(parsed) && this.child === child && this._state === 'starting') {
        this.startError = { code: parsed.code, message: parsed.message };
        return;
      }
      if (isReadyLine(parsed) && this.child === child && this._state === 'starting') {
        clearTimeout(readyTimer);
        this._info = {
          version: parsed.version,
          attestor: parsed.attestor,
          measurement: parsed.measurement,
          listen: parsed.listen,
          pid: child.pid ?? -1,
          locked: (parsed as { locked?: unknown }).locked === true,
        };
        this._state = 'ready';
        this.everReady = true;
        this.log.info({ pid: child.pid, measurement: parsed.measurement }, 'enclave ready');
        this.settleWaiters(this._info);
        this.emit('ready', this._info);
      }
    });
    const onGone = (code: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(readyTimer);
      if (this.child !== child) return;
      this.child = undefined;
      this.emit('exit', { code, signal });
      if (this._state === 'stopping' || this._state === 'stopped') return;
      if (!this.everReady) {
        // The first enclave never came up (bad attestor, missing device, unusable socket path…): restarting would
        // repeat the failure until the ready timeout. Fail start() now, with the enclave's own code if it gave one.
        this._state = 'stopped';
        const failure = this.startError
          ? new EkmsError(this.startError.code, `the enclave did not start: ${this.startError.message}`)
          : new TransportError(
              'ENCLAVE_UNAVAILABLE',
              `the enclave exited (code ${code}, signal ${signal}) before it was ready`,
            );
        this.log.error({ code, signal, error: failure.code }, 'enclave failed to start');
        this.settleWaiters(failure);
        return;
      }
      const lived = Date.now() - this.startedAt;
      if (lived >= (this.opts.stableAfterMs ?? 10_000)) this.backoffMs = this.opts.initialBackoffMs ?? 100;
      const delay = this.backoffMs;
      this.backoffMs = Math.min(this.backoffMs * 2, this.opts.maxBackoffMs ?? 5_000);
      this._state = 'backoff';
      this.log.warn({ code, signal, restartInMs: delay }, 'enclave exited; restarting');
      this.restartTimer = setTimeout(() => {
        this.restartTimer = undefined;
        if (this._state === 'backoff') this.launch();
      }, delay);
    };
    child.on('exit', onGone);
    // 'error' without a listener would crash the host. A spawn that failed (EAGAIN, EMFILE under load) has no pid
    // and may never emit 'exit': count it as a crash so the backoff retries it.
    child.on('error', (err) => {
      this.log.error({ err: err.message, pid: child.pid }, 'enclave process error');
      if (child.pid === undefined) onGone(null, null);
    });
  }

  /** Stops the enclave: SIGTERM, then SIGKILL after `graceMs`. Idempotent. */
  async stop(graceMs = 3_000): Promise<void> {
    if (this._state === 'stopped') return;
    this._state = 'stopping';
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.settleWaiters(new TransportError('HOST_SHUTTING_DOWN', 'the host is shutting down'));
    const child = this.child;
    if (child && child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill('SIGTERM');
      });
    }
    this.child = undefined;
    this._state = 'stopped';
    this.log.info('enclave stopped');
  }
}
