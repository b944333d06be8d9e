// prepack step: copies the recordings the CLI replays (`simulate --trace idle|redis|dirtier`)
// from the datasets beside the project (../shared/datasets, or $PAGEWIRE_DATASETS) into
// recordings/, which package.json's "files" ships. Only what loadRecording reads (≈ 55 MB,
// already Brotli-compressed); fails when a file is missing, so no package goes out without them.
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const from = process.env.PAGEWIRE_DATASETS ?? join(root, "..", "shared", "datasets");
const to = join(root, "recordings");
const GROUP = "qemu-tcg-128m";
const FILES = [
  "README.md",
  `${GROUP}/idle/meta.json`,
  `${GROUP}/idle/base.img.br`,
  `${GROUP}/idle/deltas.dpg.br`,
  ...["redis", "dirtier"].flatMap((set) => [
    `${GROUP}/${set}/meta.json`,
    `${GROUP}/${set}/base-diff.dpg.br`,
    `${GROUP}/${set}/deltas.dpg.br`,
  ]),
];

let bytes = 0;
let copied = 0;
for (const f of FILES) {
  const src = join(from, f);
  if (!existsSync(src)) {
    console.error(`copy-recordings: ${src} is missing; the package needs it for 'pagewire simulate --trace'`);
    process.exit(1);
  }
  const dst = join(to, f);
  const s = statSync(src);
  bytes += s.size;
  // the copy stays while the source is unchanged (same size, not newer)
  if (existsSync(dst)) {
    const d = statSync(dst);
    if (d.size === s.size && d.mtimeMs >= s.mtimeMs) continue;
  }
  mkdirSync(dirname(dst), { recursive: true });
  rmSync(dst, { force: true }); // the datasets are read-only, and so would an earlier copy be
  copyFileSync(src, dst);
  chmodSync(dst, 0o644);
  copied++;
}
console.log(
  `copy-recordings: ${FILES.length} files, ${(bytes / 2 ** 20).toFixed(1)} MiB in recordings/ (${copied} copied from ${from})`,
);
