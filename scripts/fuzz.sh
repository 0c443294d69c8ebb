#!/usr/bin/env bash
# Builds every fuzz target (cargo-fuzz: libFuzzer with AddressSanitizer, on nightly) and
# runs each for a while from its committed corpus, with memory limits, so that a panic,
# a hang or an outsized allocation from input fails the run. Installs what it needs.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# FUZZ_BUILD_ONLY=1 only builds. FUZZ_PROFILE=dev builds without optimisation (quicker to build, slower to run: what CI
# uses); the default is release. New corpus entries land in fuzz/corpus/<target>/ (the
# committed corpus is kept small: minimise with `cargo +nightly fuzz cmin <target>`).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-20}"
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(ring_file builder_file pickle config object_request listing_and_acl listing chunked_body request_target)
fi

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "== installing the nightly toolchain (cargo-fuzz needs it for sanitizer flags)" >&2
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version 2>/dev/null | grep -q '0.13.1'; then
  echo "== installing cargo-fuzz 0.13.1" >&2
  cargo install --quiet --locked cargo-fuzz@0.13.1
fi

profile=(-O)
[[ "${FUZZ_PROFILE:-release}" == dev ]] && profile=(--dev)

echo "== building fuzz targets (${FUZZ_PROFILE:-release})" >&2
cargo +nightly fuzz build "${profile[@]}"
# FUZZ_BUILD_ONLY=1: build now, run later (scripts/test.sh builds while the tests run).
[[ "${FUZZ_BUILD_ONLY:-}" == 1 ]] && exit 0

# An input that makes a parser allocate more than 512 MiB at once, or the process grow
# past 2 GiB, is a finding; so is one that takes more than 20 s.
limits=(-rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=20)
failed=()
for t in "${targets[@]}"; do
  echo "== fuzz $t for ${seconds}s" >&2
  mkdir -p "fuzz/corpus/$t"
  # Fresh inputs go to a scratch directory: the committed corpus only seeds the run.
  scratch="$(mktemp -d)"
  # Real files seed the readers too (kept in fixtures/, not copied into the corpus).
  seeds=()
  case "$t" in
    ring_file) seeds=(fixtures/rings) ;;
    builder_file | pickle) seeds=(fixtures/builders) ;;
  esac
  if cargo +nightly fuzz run "${profile[@]}" "$t" "$scratch" "fuzz/corpus/$t" "${seeds[@]}" -- \
      "${limits[@]}" -max_total_time="$seconds" -print_final_stats=1 \
      >"$scratch.log" 2>&1; then
    grep -E 'stat::(number_of_executed_units|average_exec_per_sec)' "$scratch.log" | tr '\n' ' ' >&2
    echo >&2
  else
    failed+=("$t")
    grep -vE '^(INFO|#[0-9]+)' "$scratch.log" | tail -40 >&2
  fi
  rm -rf "$scratch" "$scratch.log"
done
if ((${#failed[@]})); then
  echo "fuzzing found a crash in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "== fuzzing: no crash in ${#targets[@]} targets" >&2
