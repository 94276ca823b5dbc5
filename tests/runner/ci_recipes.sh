#!/usr/bin/env bash
# ci_recipes.sh — the CI recipes of docs/ci.md: both YAML files parse (PyYAML); the
# GitHub workflow has the package/kernel/test/report jobs, a 4-way shard matrix, a
# cache keyed by `provium kernel hash`, a report that runs always; the GitLab file has
# `parallel:` shards with CI_NODE_INDEX/CI_NODE_TOTAL, JUnit reports, a report stage
# that runs always. Then their provium commands run as written, with this build's
# provium first on PATH and the CI variables filled in: the hash step, every shard
# of a small suite, and the merge, whose totals must equal the whole suite's.
. "$(dirname "$0")/lib.sh"
py=python3
$py -c 'import yaml' 2> /dev/null || py=/usr/bin/python3
if ! $py -c 'import yaml' 2> /dev/null; then
  echo "ok 1 - docs/ci.md recipes # SKIP PyYAML is missing (make deps installs python3-yaml)"; echo "1..1"; exit 0
fi
mkdir -p "$W/bin" "$W/proj/tests"
ln -s "$PROVIUM" "$W/bin/provium"
for i in 1 2 3 4 5 6; do echo "test('t$i', function(t) t:ok(true) end)" > "$W/proj/tests/f${i}_test.lua"; done
"$PROVIUM" run "$W/proj/tests" > "$W/whole.txt" 2>&1
whole=$(grep -E '^[0-9]+ passed, ' "$W/whole.txt" | cut -d' ' -f1-10)

PATH=$W/bin:$PATH $py - "$root/docs/ci.md" "$W/proj" "$whole" <<'PY'
import os, re, subprocess, sys, yaml
doc, proj, whole = sys.argv[1], sys.argv[2], sys.argv[3]
n = 0
def tap(ok, desc, detail=""):
    global n
    n += 1
    print(("ok %d - %s" if ok else "not ok %d - %s") % (n, desc))
    if not ok and detail:
        for l in str(detail).splitlines()[-15:]:
            print("# " + l)

blocks = {}
for body in re.findall(r"```yaml\n(.*?)```", open(doc).read(), re.S):
    first = body.splitlines()[0]
    m = re.match(r"# (\S+)", first)
    if m:
        blocks[m.group(1)] = body
tap(set(blocks) == {".github/workflows/provium.yml", ".gitlab-ci.yml"},
    "docs/ci.md has a GitHub workflow and a .gitlab-ci.yml", sorted(blocks))

def parse(name):
    try:
        y = yaml.safe_load(blocks.get(name, ""))
        tap(isinstance(y, dict), "%s parses as YAML" % name)
        return y if isinstance(y, dict) else {}
    except yaml.YAMLError as e:
        tap(False, "%s parses as YAML" % name, e)
        return {}

def run(script, env, desc, want=0):
    """Runs one job step's shell as the CI would (bash -e), in the project dir."""
    e = dict(os.environ, **env)
    p = subprocess.run(["bash", "-e", "-c", script], cwd=proj, env=e,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tap(p.returncode == want, "%s (exit %d)" % (desc, p.returncode), script + "\n" + p.stdout)
    return p.stdout

def summary(out):
    m = re.search(r"^(\d+ passed, .*?)( in |$)", out, re.M)
    return " ".join(m.group(1).split()[:10]) if m else None

# ---- GitHub Actions ----
gh = parse(".github/workflows/provium.yml")
jobs = gh.get("jobs", {})
tap(set(jobs) == {"package", "kernel", "test", "report"}, "GitHub: jobs package, kernel, test, report", list(jobs))
steps = {j: jobs.get(j, {}).get("steps", []) for j in jobs}
def step(job, pred):
    return next((s for s in steps.get(job, []) if pred(s)), None)
shards = jobs.get("test", {}).get("strategy", {}).get("matrix", {}).get("shard")
tap(shards == [1, 2, 3, 4], "GitHub: the test job's matrix is shard 1..4", shards)
tap("--device /dev/kvm" in str(jobs.get("test", {}).get("container", {}).get("options", "")) and
    "--privileged" in str(jobs.get("test", {}).get("container", {}).get("options", "")),
    "GitHub: the test container gets /dev/kvm and privileges")
hstep = step("kernel", lambda s: s.get("id") == "kernel")
cache = step("kernel", lambda s: str(s.get("uses", "")).startswith("actions/cache@"))
tap(hstep and "provium kernel hash" in hstep.get("run", "") and cache and
    cache["with"]["key"] == "provium-kernel-${{ steps.kernel.outputs.hash }}" and
    cache["with"]["path"].endswith("kernel/${{ steps.kernel.outputs.hash }}"),
    "GitHub: the kernel cache is keyed and pathed by `provium kernel hash`")
restore = step("test", lambda s: str(s.get("uses", "")).startswith("actions/cache/restore@"))
tap(restore and restore["with"]["key"] == "provium-kernel-${{ needs.kernel.outputs.hash }}" and
    jobs["kernel"].get("outputs", {}).get("hash") == "${{ steps.kernel.outputs.hash }}",
    "GitHub: test jobs restore the kernel the kernel job cached, by its hash")
tap(jobs.get("report", {}).get("if") == "always()" and jobs.get("report", {}).get("needs") == "test",
    "GitHub: the report job runs after the shards, also when one failed")
up = step("test", lambda s: str(s.get("uses", "")).startswith("actions/upload-artifact@"))
tap(up and up.get("if") == "always()", "GitHub: every shard uploads its results, also when it failed")

# the steps' commands, as written
out_file = os.path.join(proj, "gh_output")
open(out_file, "w").close()
run(hstep["run"], {"GITHUB_OUTPUT": out_file}, "GitHub: the kernel hash step runs")
got = open(out_file).read()
tap(re.fullmatch(r"hash=[0-9a-f]{16}\n", got) is not None, "GitHub: it writes hash=<16 hex digits> to $GITHUB_OUTPUT", got)
shard_step = step("test", lambda s: "provium run" in s.get("run", ""))
for k in shards or []:
    script = shard_step["run"].replace("${{ matrix.shard }}", str(k))
    run(script, {}, "GitHub: shard %d/4 runs as written" % k)
    tap(os.path.exists(os.path.join(proj, "junit-%d.xml" % k)) and os.path.exists(os.path.join(proj, "events-%d.mp" % k)),
        "GitHub: shard %d wrote junit-%d.xml and events-%d.mp" % (k, k, k))
merge = step("report", lambda s: "provium events merge" in s.get("run", ""))
out = run(merge["run"], {}, "GitHub: the merge step runs as written")
tap(summary(out) == whole and os.path.exists(os.path.join(proj, "junit.xml")),
    "GitHub: the merged report equals the whole suite's (%s)" % whole, "%s\n%s" % (summary(out), out))
for f in os.listdir(proj):
    if re.match(r"(junit|events)", f):
        os.remove(os.path.join(proj, f))

# ---- GitLab CI ----
gl = parse(".gitlab-ci.yml")
tap(gl.get("stages") == ["package", "kernel", "test", "report"], "GitLab: stages package, kernel, test, report", gl.get("stages"))
test = gl.get("test", {})
tap(isinstance(test.get("parallel"), int) and test["parallel"] > 1, "GitLab: the test job runs as parallel shards", test.get("parallel"))
tap(test.get("artifacts", {}).get("reports", {}).get("junit") == "junit-*.xml" and
    test.get("artifacts", {}).get("when") == "always", "GitLab: every shard reports its JUnit, also when it failed")
tap(gl.get("report", {}).get("when") == "always", "GitLab: the report job runs also when a shard failed")
tap(gl.get("kernel", {}).get("cache", {}).get("policy") == "pull-push" and
    gl.get(".provium", {}).get("cache", {}).get("policy") == "pull",
    "GitLab: the kernel job fills the kernel cache, the others only read it")
runline = next((l for l in test.get("script", []) if "provium run" in l), "")
for k in range(1, test.get("parallel", 0) + 1):
    run(runline, {"CI_NODE_INDEX": str(k), "CI_NODE_TOTAL": str(test["parallel"])},
        "GitLab: node %d/%d runs as written" % (k, test["parallel"]))
mline = next((l for l in gl.get("report", {}).get("script", []) if "provium events merge" in l), "")
out = run(mline, {}, "GitLab: the merge runs as written")
tap(summary(out) == whole, "GitLab: the merged report equals the whole suite's", "%s\n%s" % (summary(out), out))
# the kernel job's pruning keeps only the current hash's directory
kcache = os.path.join(proj, "kc")
h = subprocess.run(["provium", "kernel", "hash"], stdout=subprocess.PIPE, text=True).stdout.strip()
for d in (h, "0123456789abcdef", "fedcba9876543210"):
    os.makedirs(os.path.join(kcache, "kernel", d))
prune = next((l for l in gl.get("kernel", {}).get("script", []) if l.startswith("find ")), "")
hline = next((l for l in gl.get("kernel", {}).get("script", []) if "provium kernel hash" in l), "")
run(hline + "\n" + prune, {"PROVIUM_CACHE_DIR": kcache}, "GitLab: the kernel job's prune runs")
tap(sorted(os.listdir(os.path.join(kcache, "kernel"))) == [h], "GitLab: the prune keeps only the current kernel's directory",
    os.listdir(os.path.join(kcache, "kernel")))
print("1..%d" % n)
PY
