// A QMP client (QEMU Machine Protocol) over a unix socket, Node only: the few commands
// pagewire needs to move a QEMU guest (stop/cont around the final round, device state by
// QEMU's own migration with x-ignore-shared).
//
// QMP is one JSON object per line. The server greets with {"QMP": …}; the client must send
// qmp_capabilities first. Every command carries an "id" here, and its answer is
// {"return": …, "id"} or {"error": {"class", "desc"}, "id"}; events ({"event": …}) may
// arrive in between and are kept (see `events`).
import { connect, type Socket } from "node:net";
import { PagewireError, type PagewireErrorCode } from "../errors.js";

/**
 * A QMP failure. `code`: QMP_CONNECT (socket unreachable), QMP_TIMEOUT (no answer in time),
 * QMP_CLOSED (QEMU went away), QMP_PROTOCOL (not QMP), QMP_COMMAND (QEMU answered with an
 * error; `qmpClass` is QEMU's class, e.g. GenericError, CommandNotFound).
 */
export class QmpError extends PagewireError {
  readonly qmpClass: string | undefined;
  constructor(code: PagewireErrorCode, message: string, options: { cause?: unknown; qmpClass?: string } = {}) {
    super(code, message, { cause: options.cause });
    this.qmpClass = options.qmpClass;
  }
}

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

/** query-status: QEMU's run state ("running", "paused", "inmigrate", "postmigrate" …). */
export interface QmpStatus {
  running: boolean;
  status: string;
  singlestep?: boolean;
}

/** query-migrate (the fields pagewire reads; QEMU sends more). */
export interface QmpMigrationInfo {
  status?:
    | "none"
    | "setup"
    | "active"
    | "completed"
    | "failed"
    | "cancelling"
    | "cancelled"
    | "pre-switchover"
    | "device"
    | string;
  "total-time"?: number;
  downtime?: number;
  "setup-time"?: number;
  ram?: {
    transferred: number;
    total: number;
    remaining: number;
    duplicate: number;
    normal: number;
    "dirty-sync-count": number;
    mbps: number;
    [k: string]: unknown;
  };
  xbzrle_cache?: Record<string, number>;
  "error-desc"?: string;
  [k: string]: unknown;
}

export interface QmpClientOptions {
  /** Per command, ms (default 10 000). */
  timeoutMs?: number;
  /** Connecting and the greeting, ms (default 5 000). */
  connectTimeoutMs?: number;
}

interface Pending {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class QmpClient {
  readonly path: string;
  /** QEMU's version from the greeting ("7.2.x"). */
  version = "";
  /** Events received so far (oldest first). */
  readonly events: QmpEvent[] = [];
  readonly #listeners = new Set<(e: QmpEvent) => void>();
  #socket: Socket;
  #timeoutMs: number;
  #buffer = "";
  #nextId = 1;
  #pending = new Map<string, Pending>();
  #closed: QmpError | null = null;
  #greeting: { resolve: (g: Record<string, unknown>) => void; reject: (e: Error) => void } | null = null;

  private constructor(path: string, socket: Socket, timeoutMs: number) {
    this.path = path;
    this.#socket = socket;
    this.#timeoutMs = timeoutMs;
  }

  /** Connects to QEMU's `-qmp unix:PATH,server=on,wait=off` and negotiates capabilities. */
  static async connect(path: string, options: QmpClientOptions = {}): Promise<QmpClient> {
    const connectTimeout = options.connectTimeoutMs ?? 5000;
    const socket = connect(path);
    const client = new QmpClient(path, socket, options.timeoutMs ?? 10_000);
    const greeting = new Promise<Record<string, unknown>>(
      (resolve, reject) => (client.#greeting = { resolve, reject }),
    );
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => client.#onData(chunk));
    greeting.catch(() => {});
    let up = false;
    socket.on("error", (err) => {
      client.#fail(
        up
          ? new QmpError("QMP_CLOSED", `QMP ${path}: ${err.message}`, { cause: err })
          : new QmpError("QMP_CONNECT", `cannot connect to QMP socket ${path}: ${err.message}`, { cause: err }),
      );
    });
    socket.on("close", () => client.#fail(new QmpError("QMP_CLOSED", `QMP ${path}: connection closed by QEMU`)));
    const connected = new Promise<void>((resolve, reject) => {
      socket.once("connect", () => {
        up = true;
        resolve();
      });
      socket.once("error", () => reject(client.#closed));
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new QmpError("QMP_TIMEOUT", `QMP ${path}: no greeting within ${connectTimeout} ms`)),
        connectTimeout,
      );
      timer.unref?.();
    });
    try {
      await Promise.race([connected, timeout]);
      const g = await Promise.race([greeting, timeout]);
      const v = (g.QMP as { version?: { qemu?: { major: number; minor: number; micro: number } } } | undefined)?.version
        ?.qemu;
      if (v) client.version = `${v.major}.${v.minor}.${v.micro}`;
      await client.execute("qmp_capabilities");
      return client;
    } catch (err) {
      client.close();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs one QMP command; resolves with its "return" value. */
  execute<T = unknown>(
    command: string,
    args?: Record<string, unknown>,
    options: { timeoutMs?: number } = {},
  ): Promise<T> {
    if (this.#closed) return Promise.reject(this.#closed);
    const id = `pw-${this.#nextId++}`;
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new QmpError("QMP_TIMEOUT", `QMP ${this.path}: '${command}' got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref?.();
      this.#pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      this.#socket.write(
        JSON.stringify(args ? { execute: command, arguments: args, id } : { execute: command, id }) + "\n",
      );
    });
  }

  /** Pauses the guest's CPUs (run state "paused"). */
  stop(): Promise<void> {
    return this.execute("stop") as Promise<void>;
  }

  /** Resumes the guest's CPUs. */
  cont(): Promise<void> {
    return this.execute("cont") as Promise<void>;
  }

  queryStatus(): Promise<QmpStatus> {
    return this.execute<QmpStatus>("query-status");
  }

  /** migrate-set-capabilities with { name: state } pairs, e.g. { "x-ignore-shared": true }. */
  setMigrationCapabilities(capabilities: Record<string, boolean>): Promise<void> {
    return this.execute("migrate-set-capabilities", {
      capabilities: Object.entries(capabilities).map(([capability, state]) => ({ capability, state })),
    }) as Promise<void>;
  }

  /** migrate-set-parameters, e.g. { "max-bandwidth": bytesPerSecond, "downtime-limit": ms }. */
  setMigrationParameters(parameters: Record<string, unknown>): Promise<void> {
    return this.execute("migrate-set-parameters", parameters) as Promise<void>;
  }

  /** Starts an outgoing migration to `uri` ("tcp:HOST:PORT"); returns at once (poll queryMigrate). */
  migrate(uri: string): Promise<void> {
    return this.execute("migrate", { uri }) as Promise<void>;
  }

  queryMigrate(): Promise<QmpMigrationInfo> {
    return this.execute<QmpMigrationInfo>("query-migrate");
  }

  /**
   * Polls query-migrate until the migration is "completed" (resolves with the final info)
   * or "failed"/"cancelled" (rejects QMP_MIGRATION_FAILED), or `timeoutMs` passes.
   */
  async waitForMigration(options: { timeoutMs?: number; pollMs?: number } = {}): Promise<QmpMigrationInfo> {
    const deadline = Date.now() + (options.timeoutMs ?? 60_000);
    for (;;) {
      const info = await this.queryMigrate();
      if (info.status === "completed") return info;
      if (info.status === "failed" || info.status === "cancelled") {
        throw new QmpError(
          "QMP_MIGRATION_FAILED",
          `QEMU migration ${info.status}${info["error-desc"] ? `: ${info["error-desc"]}` : ""}`,
        );
      }
      if (Date.now() > deadline)
        throw new QmpError(
          "QMP_TIMEOUT",
          `QEMU migration still '${info.status}' after ${options.timeoutMs ?? 60_000} ms`,
        );
      await new Promise((r) => setTimeout(r, options.pollMs ?? 2));
    }
  }

  /** Polls query-status until the run state is one of `states`. */
  async waitForStatus(states: string[], options: { timeoutMs?: number; pollMs?: number } = {}): Promise<QmpStatus> {
    const deadline = Date.now() + (options.timeoutMs ?? 10_000);
    for (;;) {
      const s = await this.queryStatus();
      if (states.includes(s.status)) return s;
      if (Date.now() > deadline)
        throw new QmpError("QMP_TIMEOUT", `QEMU run state is still '${s.status}' (waiting for ${states.join(" or ")})`);
      await new Promise((r) => setTimeout(r, options.pollMs ?? 2));
    }
  }

  /** Asks QEMU to exit (the connection then closes). */
  async quit(): Promise<void> {
    try {
      await this.execute("quit");
    } catch (err) {
      if (!(err instanceof QmpError && err.code === "QMP_CLOSED")) throw err;
    }
  }

  close(): void {
    this.#fail(new QmpError("QMP_CLOSED", `QMP ${this.path}: client closed`));
    this.#socket.destroy();
  }

  #onData(chunk: string): void {
    this.#buffer += chunk;
    let nl: number;
    while ((nl = this.#buffer.indexOf("\n")) >= 0) {
      const line = this.#buffer.slice(0, nl).trim();
      this.#buffer = this.#buffer.slice(nl + 1);
      if (line) this.#onMessage(line);
    }
  }

  /** Calls `fn` with every event from now on (they are kept in `events` too); returns the unsubscribe. */
  onEvent(fn: (e: QmpEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #onMessage(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch (cause) {
      this.#fail(new QmpError("QMP_PROTOCOL", `QMP ${this.path}: not JSON: ${line.slice(0, 80)}`, { cause }));
      this.#socket.destroy();
      return;
    }
    if ("QMP" in msg) {
      this.#greeting?.resolve(msg);
      this.#greeting = null;
      return;
    }
    if ("event" in msg) {
      this.events.push(msg as unknown as QmpEvent);
      if (this.events.length > 1000) this.events.shift();
      for (const fn of this.#listeners) fn(msg as unknown as QmpEvent);
      return;
    }
    const id = typeof msg.id === "string" ? msg.id : undefined;
    const p = id === undefined ? undefined : this.#pending.get(id);
    if (!p) return; // an answer nobody waits for any more (timed out)
    this.#pending.delete(id!);
    clearTimeout(p.timer);
    if ("error" in msg) {
      const e = (msg.error ?? {}) as { class?: string; desc?: string };
      p.reject(
        new QmpError(
          "QMP_COMMAND",
          `QMP '${p.command}' failed: ${e.class ?? "Error"}: ${e.desc ?? "(no description)"}`,
          { qmpClass: e.class },
        ),
      );
    } else {
      p.resolve(msg.return);
    }
  }

  #fail(err: QmpError): void {
    if (this.#closed) return;
    this.#closed = err;
    this.#greeting?.reject(err);
    this.#greeting = null;
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.#pending.clear();
  }
}
