#!/usr/bin/env python3
"""Benchmark of the operator on the local control plane and the provider simulator.

Figures, not assertions. Run through hack/bench.sh, which starts the environment; this script
starts a fresh release operator for each run, so that every run's memory and CPU are its own.

Per run (N revocations, provider latency L):
  1. The floor: a minimal client (this script, --clients threads with keep-alive connections)
     creates N objects of copies of the revocation CRDs under another group (same schema and CEL
     rules, no controller watches them) and patches each one's status once. Its wall time is what the API server needs for the same work without Revoker.
  2. The batch: the same client creates N revocations (three kinds over four providers, round
     robin) while watches follow them; the time runs from the first create to the last
     Succeeded/Failed seen.
  3. Idle: nothing to do for --idle seconds.
With --shards S > 1, S operator processes each run one shard (`--shard-selector revoker.dev/shard=i`,
their own Lease, the first checks providers) and the revocations are labelled round robin; CPU and
memory are the sums over the processes.
Printed per run: time and ratio to the floor, revocations/s, API-server requests per revocation by
verb/resource/code (kube-apiserver's own apiserver_request_total), status writes per revocation
(409s included), simulator calls (revoking, login/token, digest challenges), operator peak RSS
and CPU seconds, reconciles and requests in idle time.
"""

import argparse
import base64
import collections
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

GROUP = "/apis/revoker.dev/v1alpha1"
SIM = "http://127.0.0.1:18080"
METRICS_PORT = 18081
METRICS = f"http://127.0.0.1:{METRICS_PORT}/metrics"
ATLAS_FED, ATLAS_IDP = "55fa922fb343282757d9554e", "32b6e34b3d91647abb20e7b8"
MIX = [
    ("jwksrevocations", "JwksRevocation",
     {"providerRef": {"name": "atlas"}, "atlas": {"federationSettingsId": ATLAS_FED, "identityProviderId": ATLAS_IDP}}),
    ("authmethodrevocations", "AuthMethodRevocation",
     {"providerRef": {"name": "atlas-sa"}, "atlas": {"groupId": "32b6e34b3d91647abb20e7b9"}}),
    ("tokenrevocations", "TokenRevocation",
     {"providerRef": {"name": "infisical"}, "infisical": {
         "scope": "UniversalAuthClientSecret", "identityId": "8d5f6a1e-1c2b-4d3e-8f9a-0b1c2d3e4f5a",
         "clientSecretId": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"}}),
    ("tokenrevocations", "TokenRevocation",
     {"providerRef": {"name": "onezone"}, "onezone": {"scope": "CurrentUserTemporaryTokens"}}),
]
PLURALS = sorted({plural for plural, _, _ in MIX})
FLOOR_GROUP = "bench.revoker.dev"


def floor_crds():
    """The revocation CRDs under another group (same schema, same CEL rules): objects no
    controller watches, which cost the API server what revocations cost it."""
    listed = subprocess.run(["kubectl", "create", "--dry-run=client", "-o", "json", "-f", "crds/"],
                            check=True, capture_output=True, text=True).stdout
    decoder, items, at = json.JSONDecoder(), [], 0
    while at < len(listed):
        if listed[at].isspace():
            at += 1
            continue
        doc, at = decoder.raw_decode(listed, at)
        items.extend(doc.get("items", [doc]))
    kinds = {kind for _, kind, _ in MIX}
    mirrors = []
    for crd in items:
        if crd["spec"]["names"]["kind"] not in kinds:
            continue
        crd["spec"]["group"] = FLOOR_GROUP
        crd["metadata"] = {"name": f"{crd['spec']['names']['plural']}.{FLOOR_GROUP}"}
        crd["spec"]["names"].pop("shortNames", None)
        crd["spec"]["names"].pop("categories", None)
        mirrors.append(crd)
    return mirrors


class Kube:
    """A minimal API-server client: the admin kubeconfig's client certificate, one keep-alive
    connection per thread."""

    def __init__(self, kubeconfig):
        raw = subprocess.run(["kubectl", "config", "view", "--raw", "--minify", "-o", "json", "--kubeconfig", kubeconfig],
                             check=True, capture_output=True, text=True).stdout
        config = json.loads(raw)
        cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
        self.dir = tempfile.mkdtemp(prefix="revoker-bench-")
        paths = {}
        for key in ("certificate-authority-data", "client-certificate-data", "client-key-data"):
            source = cluster if key.startswith("certificate") else user
            paths[key] = os.path.join(self.dir, key)
            with open(paths[key], "wb") as f:
                f.write(base64.b64decode(source[key]))
        self.ctx = ssl.create_default_context(cafile=paths["certificate-authority-data"])
        self.ctx.load_cert_chain(paths["client-certificate-data"], paths["client-key-data"])
        server = cluster["server"].removeprefix("https://")
        self.host, self.port = server.split(":")
        self.local = threading.local()

    def conn(self):
        if getattr(self.local, "conn", None) is None:
            self.local.conn = http.client.HTTPSConnection(self.host, int(self.port), context=self.ctx, timeout=60)
        return self.local.conn

    def call(self, method, path, body=None, content_type="application/json"):
        data = None if body is None else json.dumps(body).encode()
        for _ in range(3):
            conn = self.conn()
            try:
                conn.request(method, path, body=data, headers={"Content-Type": content_type, "Accept": "application/json"})
                response = conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                self.local.conn = None
        raise RuntimeError(f"{method} {path}: no answer")

    def stream(self, path):
        conn = http.client.HTTPSConnection(self.host, int(self.port), context=self.ctx, timeout=600)
        conn.request("GET", path, headers={"Accept": "application/json"})
        return conn, conn.getresponse()


def http_get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read().decode()


def http_send(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read().decode()


def apiserver_requests(kube):
    status, body = kube.call("GET", "/metrics")
    assert status == 200, status
    out = collections.Counter()
    for line in body.decode().splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels, value = line.rsplit(" ", 1)
        l = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if l.get("group") == FLOOR_GROUP:
            continue
        resource = l.get("resource", "") + ("/" + l["subresource"] if l.get("subresource") else "")
        out[(l["verb"], resource, l["code"])] += float(value)
    return out


def proc_figures(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status") if ":" in line)
    kib = lambda key: int(status[key].split()[0])
    return cpu, kib("VmRSS"), kib("VmHWM")


def operator_reconciles(shards=1):
    total = 0.0
    for i in range(shards):
        for line in http_get(f"http://127.0.0.1:{METRICS_PORT + i}/metrics").splitlines():
            if line.startswith("revoker_reconciles_total"):
                total += float(line.rsplit(" ", 1)[1])
    return total


def in_parallel(clients, items, work):
    """Run work(item) over items with `clients` threads; returns when all are done."""
    errors, lock = [], threading.Lock()
    chunks = [items[i::clients] for i in range(clients)]

    def run(chunk):
        for item in chunk:
            try:
                work(item)
            except Exception as e:  # noqa: BLE001 - reported below
                with lock:
                    errors.append(str(e))
    threads = [threading.Thread(target=run, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, first: {errors[0]}")


def floor(kube, ns, n, clients, prefix):
    """N creates plus one status patch each, by the minimal client."""
    def create_and_patch(i):
        plural, kind, spec = MIX[i % len(MIX)]
        name = f"{prefix}-{i}"
        base = f"/apis/{FLOOR_GROUP}/v1alpha1/namespaces/{ns}/{plural}"
        body = {"apiVersion": f"{FLOOR_GROUP}/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}
        status, text = kube.call("POST", base, body)
        if status != 201:
            raise RuntimeError(f"create {name}: {status} {text[:200]!r}")
        status, text = kube.call("PATCH", f"{base}/{name}/status",
                                 {"status": {"phase": "Succeeded"}}, "application/merge-patch+json")
        if status != 200:
            raise RuntimeError(f"patch {name}: {status} {text[:200]!r}")
    start = time.monotonic()
    in_parallel(clients, list(range(n)), create_and_patch)
    return time.monotonic() - start


class Finished:
    """Watches the revocation kinds of a namespace and records when each object finishes."""

    def __init__(self, kube, ns, n):
        self.n, self.done, self.failed = n, {}, set()
        self.cond = threading.Condition()
        self.streams = []
        for plural in PLURALS:
            conn, response = kube.stream(f"{GROUP}/namespaces/{ns}/{plural}?watch=1")
            self.streams.append(conn)
            threading.Thread(target=self.follow, args=(plural, response), daemon=True).start()

    def follow(self, plural, response):
        try:
            for line in response:
                event = json.loads(line)
                obj = event.get("object", {})
                phase = (obj.get("status") or {}).get("phase")
                if phase in ("Succeeded", "Failed"):
                    key = plural + "/" + obj["metadata"]["name"]
                    with self.cond:
                        if key not in self.done:
                            self.done[key] = time.monotonic()
                            if phase == "Failed":
                                self.failed.add(key)
                            self.cond.notify_all()
        except (OSError, ValueError, http.client.HTTPException):
            pass

    def wait(self, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.done) < self.n and time.monotonic() < deadline:
                self.cond.wait(timeout=1)
        for conn in self.streams:
            # Not close(): the reading thread holds the response's lock.
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return len(self.done)


def simulator_counts():
    counts = json.loads(http_get(f"{SIM}/_sim/calls"))["countsByStatus"]
    revoking = login = challenges = total = 0
    for target, by_status in counts.items():
        method, path = target.split(" ", 1)
        for status, count in by_status.items():
            total += count
            if path in ("/api/oauth/token", "/api/v1/auth/universal-auth/login"):
                login += count
            elif status == "401" and path.startswith("/api/atlas/"):
                challenges += count
            elif method in ("DELETE", "PATCH", "POST") and status.startswith("2"):
                revoking += count
    return {"revoking": revoking, "login": login, "challenges": challenges, "total": total,
            "atlas_digest": sum(c for t, s in counts.items() if t.split(" ", 1)[1].startswith("/api/atlas/v2/federationSettings")
                                for c in s.values())}


def wait_providers_ready(kube, ns):
    for _ in range(300):
        status, body = kube.call("GET", f"{GROUP}/namespaces/{ns}/revocationproviders")
        items = json.loads(body)["items"] if status == 200 else []
        ready = [p for p in items if any(c["type"] == "Ready" and c["status"] == "True"
                                         for c in (p.get("status") or {}).get("conditions", []))]
        if items and len(ready) == len(items):
            return
        time.sleep(0.2)
    raise RuntimeError(f"providers in {ns} did not become Ready")


def shard_flags(i, shards):
    if shards == 1:
        return []
    return ["--shard-selector", f"revoker.dev/shard={i}", "--lease-name", f"revoker-leader-bench-{i}",
            f"--check-providers={'true' if i == 0 else 'false'}"]


def start_operators(args, log, shards):
    """One operator process per shard, metrics on consecutive ports from METRICS_PORT."""
    env = dict(os.environ, KUBECONFIG=args.operator_kubeconfig)
    procs = []
    for i in range(shards):
        cmd = args.operator_cmd.replace(f"127.0.0.1:{METRICS_PORT}", f"127.0.0.1:{METRICS_PORT + i}").split()
        procs.append(subprocess.Popen(cmd + shard_flags(i, shards), env=env, stdout=log, stderr=log,
                                      stdin=subprocess.DEVNULL, start_new_session=True))
        for _ in range(300):
            try:
                http_get(f"http://127.0.0.1:{METRICS_PORT + i}/metrics")
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"operator {i} did not start")
    return procs


def procs_figures(procs):
    figures = [proc_figures(p.pid) for p in procs]
    return tuple(sum(f[k] for f in figures) for k in range(3))


SHARD_LEASES_RBAC = """apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: revoker-bench-shard-leases, namespace: revoker-system}
rules:
  - apiGroups: [coordination.k8s.io]
    resources: [leases]
    resourceNames: [revoker-leader-bench-0, revoker-leader-bench-1, revoker-leader-bench-2, revoker-leader-bench-3]
    verbs: [get, update, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: revoker-bench-shard-leases, namespace: revoker-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: revoker-bench-shard-leases}
subjects: [{kind: ServiceAccount, name: revoker, namespace: revoker-system}]
"""


def stop_operator(proc):
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def kubectl(*argv):
    subprocess.run(["kubectl", *argv], check=True, capture_output=True, text=True)


def one_run(kube, args, n, latency, shards, log):
    ns = f"bench-{n}-{latency}ms-{shards}s"
    kubectl("create", "namespace", ns)
    kubectl("apply", "-n", ns, "-f", "examples/providers.yaml")
    # A first, small floor warms the API server up (CRD schema, connections); the second is measured.
    floor(kube, ns, max(10, n // 10), args.clients, "warmup")
    floor_s = floor(kube, ns, n, args.clients, "floor")

    http_send("DELETE", f"{SIM}/_sim/faults")
    if latency:
        http_send("POST", f"{SIM}/_sim/faults", {"match": {"path": "/*"}, "kind": "latency", "latencyMs": latency})
    operators = start_operators(args, log, shards)
    try:
        wait_providers_ready(kube, ns)
        time.sleep(1)
        http_send("POST", f"{SIM}/_sim/calls/reset")
        before = apiserver_requests(kube)
        cpu0, _, _ = procs_figures(operators)
        finished = Finished(kube, ns, n)

        def create(i):
            plural, kind, spec = MIX[i % len(MIX)]
            meta = {"name": f"bench-{i}", "labels": {"revoker.dev/shard": str(i % shards)}}
            body = {"apiVersion": "revoker.dev/v1alpha1", "kind": kind, "metadata": meta, "spec": spec}
            status, text = kube.call("POST", f"{GROUP}/namespaces/{ns}/{plural}", body)
            if status != 201:
                raise RuntimeError(f"create bench-{i}: {status} {text[:200]!r}")
        start = time.monotonic()
        in_parallel(args.clients, list(range(n)), create)
        created = time.monotonic() - start
        done = finished.wait(timeout=max(120, n * 0.5))
        end = max(finished.done.values(), default=time.monotonic())
        batch_s = end - start
        after = apiserver_requests(kube)
        cpu1, rss, hwm = procs_figures(operators)
        sim = simulator_counts()

        r0 = operator_reconciles(shards)
        idle_before = apiserver_requests(kube)
        sim_idle_before = simulator_counts()["total"]
        time.sleep(args.idle)
        idle_requests = apiserver_requests(kube)
        idle_requests.subtract(idle_before)
        idle_reconciles = operator_reconciles(shards) - r0
        idle_calls = simulator_counts()["total"] - sim_idle_before
    finally:
        for operator in operators:
            stop_operator(operator)
    http_send("DELETE", f"{SIM}/_sim/faults")

    delta = after
    delta.subtract(before)
    shard_words = f"{shards} shard processes" if shards > 1 else "1 process"
    print(f"\n### N = {n}, provider latency {latency} ms, {args.clients} clients, {shard_words}; operator: {args.operator_cmd.split(' ', 1)[1]}\n")
    print("| figure | value |\n|---|---|")
    print(f"| finished | {done}/{n} ({len(finished.failed)} Failed) |")
    print(f"| floor: {n} creates + {n} status patches | {floor_s:.2f} s |")
    print(f"| first create → all finished | {batch_s:.2f} s (creates alone {created:.2f} s) |")
    print(f"| **ratio to the floor** | **{batch_s / floor_s:.2f}×** |")
    print(f"| revocations/s | {done / batch_s:.1f} |")
    ours = {k: v for k, v in delta.items() if v > 0 and (k[1].split("/")[0] in PLURALS or k[1] in ("secrets", "events", "revocationproviders", "clusterrevocationproviders", "namespaces"))}
    operator_total = 0.0
    for (verb, resource, code), v in sorted(ours.items()):
        by_bench = verb in ("POST", "WATCH") and resource in PLURALS
        if not by_bench:
            operator_total += v
        who = " (the benchmark client)" if by_bench else ""
        print(f"| {verb} `{resource}` {code}{who} | {v / n:.2f} per revocation |")
    print(f"| **API-server requests by the operator** | **{operator_total / n:.2f} per revocation** |")
    writes = sum(v for (verb, res, _), v in delta.items() if res.endswith("/status") and res.split("/")[0] in PLURALS and verb in ("PUT", "PATCH", "UPDATE"))
    conflicts = sum(v for (verb, res, code), v in delta.items() if res.endswith("/status") and res.split("/")[0] in PLURALS and code == "409")
    print(f"| status writes (409s among them) | {writes / n:.2f} ({conflicts / n:.2f}) per revocation |")
    print(f"| simulator: revoking calls | {sim['revoking']} ({sim['revoking'] / n:.2f} per revocation) |")
    print(f"| simulator: login/token calls | {sim['login']} |")
    jwks = -(-n // len(MIX))
    print(f"| simulator: Atlas digest challenges | {sim['challenges']}; JWKS requests {sim['atlas_digest']} for {jwks} JWKS revocations ({sim['atlas_digest'] / jwks:.2f} per call) |")
    print(f"| operator CPU during the batch | {cpu1 - cpu0:.2f} s |")
    print(f"| operator memory after the batch | VmRSS {rss / 1024:.1f} MiB, peak VmHWM {hwm / 1024:.1f} MiB |")
    # The benchmark's own GET /metrics has no resource; Leases are the leader election.
    idle_rows = {k: v for k, v in idle_requests.items() if v > 0 and k[1] not in ("", "leases") and k[0] != "WATCH"}
    idle_api = sum(idle_rows.values())
    detail = ", ".join(f"{verb} {res} {v:.0f}" for (verb, res, _), v in sorted(idle_rows.items())) or "none"
    print(f"| idle {args.idle} s: reconciles / API requests (no Leases) / provider calls | {idle_reconciles:.0f} / {idle_api:.0f} ({detail}) / {idle_calls} |")
    sys.stdout.flush()
    for plural in PLURALS:
        for group in ("revoker.dev", FLOOR_GROUP):
            kube.call("DELETE", f"/apis/{group}/v1alpha1/namespaces/{ns}/{plural}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", default="1000", help="comma list of batch sizes")
    parser.add_argument("--latency", default="0", help="comma list of provider latencies in ms")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--shards", default="1", help="comma list of shard process counts (1 to 4)")
    parser.add_argument("--idle", type=int, default=30, help="seconds of idleness measured after each batch")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--operator-kubeconfig", required=True)
    parser.add_argument("--operator-cmd", required=True)
    parser.add_argument("--operator-log", required=True)
    args = parser.parse_args()
    kube = Kube(args.kubeconfig)
    for crd in floor_crds():
        status, text = kube.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        if status not in (201, 409):
            raise RuntimeError(f"floor CRD: {status} {text[:200]!r}")
        kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd['metadata']['name']}")
    shard_counts = [int(x) for x in args.shards.split(",")]
    if any(not 1 <= s <= 4 for s in shard_counts):
        raise SystemExit("--shards: 1 to 4 processes")
    if max(shard_counts) > 1:
        subprocess.run(["kubectl", "apply", "-f", "-"], input=SHARD_LEASES_RBAC, check=True, capture_output=True, text=True)
    with open(args.operator_log, "ab") as log:
        for n in [int(x) for x in args.n.split(",")]:
            for latency in [int(x) for x in args.latency.split(",")]:
                for shards in shard_counts:
                    one_run(kube, args, n, latency, shards, log)


if __name__ == "__main__":
    main()
