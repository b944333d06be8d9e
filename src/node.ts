// pagewire/node: the Node-only parts (files, TCP/TLS, recordings). The main entry
// ("pagewire") stays browser-safe.
export * from "./index.js";
export { FileMemory } from "./memory/file-memory.js";
export { connectTcp, TcpListener, type TcpOptions } from "./transport/tcp.js";
export {
  loadRecording,
  parseDirtyPageRecords,
  applyDirtyPageRecord,
  RecordingError,
  type Recording,
  type DirtyPageRecord,
} from "./memory/recording.js";
export {
  TraceWorkload,
  openRecording,
  recordMemory,
  encodeDirtyPageRecord,
  SHIPPED_RECORDINGS,
  type RecordOptions,
  type RecordSummary,
} from "./workload/trace.js";
export {
  QmpClient,
  QmpError,
  type QmpEvent,
  type QmpStatus,
  type QmpMigrationInfo,
  type QmpClientOptions,
} from "./qemu/qmp.js";
export {
  migrateQemuGuest,
  QemuMigrationError,
  type QemuMigrationOptions,
  type QemuMigrationResult,
} from "./qemu/migrate-qemu.js";
