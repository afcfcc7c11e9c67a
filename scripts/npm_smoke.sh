#!/usr/bin/env bash
# The npm package as a user gets it, on Node alone: `npm pack` the package
# built in DIR (default dist/npm, from `deno task npm`), install the tarball
# into a temporary prefix, and run the installed `proxy` with a PATH that holds
# node and nothing of Deno: --version, serve + client echo, a 1 s load test.
# Everything it starts is stopped; it prints one line unless something fails.
set -euo pipefail
cd "$(dirname "$0")/.."
pkg=$(cd "${1:-dist/npm}" && pwd)

tmp=$(mktemp -d)
serve_pid=""
cleanup() {
  if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
    kill -TERM "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "npm smoke: $*" >&2
  if [ -s "$tmp/serve.log" ]; then sed 's/^/  serve: /' "$tmp/serve.log" >&2; fi
  exit 1
}
# Processes whose command line names the install prefix: the command, its
# deno, the workers.
leftovers() { pgrep -af "$tmp/prefix" || true; }

version=$(node -p 'require(process.argv[1]).version' "$pkg/package.json")
(cd "$pkg" && npm pack --silent --pack-destination "$tmp" >/dev/null)
tarball="$tmp/proxy-$version.tgz"
[ -f "$tarball" ] || fail "npm pack made no $tarball"
npm i -g --prefix "$tmp/prefix" "$tarball" --no-audit --no-fund --loglevel=error \
  >"$tmp/npm.log" 2>&1 || fail "npm i -g failed: $(tail -n 5 "$tmp/npm.log")"

# The installed command runs with node on the PATH and nothing else.
mkdir "$tmp/node-only"
ln -s "$(command -v node)" "$tmp/node-only/node"
node_path="$tmp/prefix/bin:$tmp/node-only"
proxy="$tmp/prefix/bin/proxy"
[ -x "$proxy" ] || fail "npm i -g installed no proxy command"
[ "$(ls "$tmp/prefix/bin" "$tmp/node-only" | grep -c '^deno')" = 0 ] ||
  fail "a deno is on the PATH given: the check would prove nothing"
cd "$tmp"

got=$(PATH="$node_path" "$proxy" --version </dev/null) || fail "proxy --version exited $?"
[ "$got" = "$version" ] || fail "proxy --version printed '$got', expected '$version'"

PATH="$node_path" "$proxy" serve --port 0 --workers 2 </dev/null 2>"$tmp/serve.log" &
serve_pid=$!
address=""
for _ in $(seq 1 300); do # polls the log for up to 30 s; it takes well under 1 s
  address=$(sed -nE 's/.*listening on ([^ ]+).*/\1/p' "$tmp/serve.log" | head -n 1)
  [ -n "$address" ] && break
  kill -0 "$serve_pid" 2>/dev/null || fail "proxy serve exited before listening"
  sleep 0.1
done
[ -n "$address" ] || fail "proxy serve did not listen within 30 s"
host=${address%:*}
port=${address##*:}

big=12345678901234567890 # beyond 2^63: a uint64, exact only if nothing turns it into a float
got=$(PATH="$node_path" "$proxy" client "$host" "$port" echo "$big" </dev/null) ||
  fail "proxy client echo exited $?"
[ "$got" = "$big" ] || fail "echo of $big came back as '$got'"
stats=$(PATH="$node_path" "$proxy" client "$host" "$port" proxy.stats </dev/null) ||
  fail "proxy client proxy.stats exited $?"
ready=$(node -p 'JSON.parse(process.argv[1]).workers.filter((w) => w.state === "ready").length' \
  "$stats")
[ "$ready" = 2 ] || fail "proxy.stats shows $ready ready workers, expected 2"

kill -TERM "$serve_pid"
status=0
wait "$serve_pid" || status=$?
serve_pid=""
[ "$status" = 0 ] || fail "proxy serve exited $status on SIGTERM"
[ -z "$(leftovers)" ] || fail "still running after serve stopped: $(leftovers)"

report=$(PATH="$node_path" "$proxy" test --duration 1 --workers 2 --connections 4 --json \
  </dev/null 2>"$tmp/test.log") || fail "proxy test exited $?: $(cat "$tmp/test.log")"
requests=$(node -p '
  const r = JSON.parse(process.argv[1]);
  r.requests > 0 && r.unanswered === 0 && Object.keys(r.errors).length === 0 ? r.requests : "failed"
' "$report")
[ "$requests" != failed ] || fail "proxy test reported a failed run: $report"
[ -z "$(leftovers)" ] || fail "still running after proxy test: $(leftovers)"

echo "npm smoke: proxy $version from its tarball ran on Node alone:" \
  "--version, serve + echo of $big, test ($requests requests in 1 s)"
