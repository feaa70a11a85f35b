#!/usr/bin/env python3
"""Checks the Kubernetes delivery (issue 4): every YAML file parses, every kustomize overlay
renders with `kubectl kustomize`, and every rendered object validates against the Kubernetes 1.30
schemas (the `kubernetes-validate` package, strict: unknown fields are errors). A deliberately
broken object must fail, so a validator that accepts everything fails the check too.

The Helm chart cannot be rendered here (no helm binary), so it is checked for what can be:
`values.yaml` and `ci/*-values.yaml` against `values.schema.json` (a bogus value must fail),
every `## @param` in the chart README, and chart and kustomize base describing the same
components, ports and object kinds.

Exit status 0 when everything holds, 1 otherwise (each problem printed).
Usage: scripts/validate-k8s.py [repo root]
"""

import pathlib
import subprocess
import sys

import kubernetes_validate
import yaml

K8S_VERSION = "1.30.0"


def yaml_files(root):
    for top in ("k8s", "deploy", "helm"):
        for path in sorted((root / top).rglob("*.y*ml")):
            # Helm templates are Go templates, not YAML, until rendered.
            if "templates" in path.parts:
                continue
            yield path


def validate(obj):
    """None when valid, else the error."""
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        return None
    except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as err:
        return str(err).splitlines()[0]


def check_chart(root):
    import json

    import jsonschema

    chart = root / "helm" / "crm"
    problems = []
    schema = json.loads((chart / "values.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    files = [chart / "values.yaml", *sorted((chart / "ci").glob("*-values.yaml"))]
    values = None
    for path in files:
        doc = yaml.safe_load(path.read_text()) or {}
        if path.name == "values.yaml":
            values = doc
        for err in validator.iter_errors(doc):
            where = "/".join(str(p) for p in err.absolute_path)
            problems.append(f"{path.relative_to(root)}: {where}: {err.message}")
    for broken, what in [
        ({"components": {"gateway": {"replicaz": 2}}}, "a misspelt key"),
        ({"kafka": {"security": {"protocol": "sasl_ssl"}}}, "SASL without credentials"),
        (
            {"kafka": {"security": {"protocol": "plaintext", "tls": {"caSecret": "ca"}}}},
            "a CA that plaintext never uses",
        ),
        ({"redis": {"url": "redis://r:6379", "tls": {"caSecret": "ca"}}}, "TLS files for redis://"),
    ]:
        if not list(validator.iter_errors(broken)):
            problems.append(f"values.schema.json accepted {what}: it checks nothing")

    readme = (chart / "README.md").read_text()
    for line in (chart / "values.yaml").read_text().splitlines():
        if line.startswith("## @param "):
            name = line.split()[2]
            if f"`{name}`" not in readme:
                problems.append(f"helm/crm/README.md: value {name} is not in the table")

    # Chart and kustomize base: the same components, ports and kinds.
    template = (chart / "templates" / "components.yaml").read_text()
    base = root / "k8s" / "base"
    base_components = {
        p.stem for p in base.glob("*.yaml") if p.name not in ("kustomization.yaml", "shared-config.yaml")
    }
    if set(values["components"]) != base_components:
        problems.append(
            f"chart components {sorted(values['components'])} != k8s/base {sorted(base_components)}"
        )
    for name in sorted(base_components & set(values["components"])):
        objects = [o for o in yaml.safe_load_all((base / f"{name}.yaml").read_text()) if o]
        for obj in objects:
            if f"kind: {obj['kind']}" not in template:
                problems.append(f"chart renders no {obj['kind']} (k8s/base/{name}.yaml has one)")
            if obj["kind"] == "Service":
                base_ports = {p["name"]: p["port"] for p in obj["spec"]["ports"]}
                chart_ports = values["components"][name]["ports"]
                if base_ports != chart_ports:
                    problems.append(f"{name}: ports differ: k8s/base {base_ports}, chart {chart_ports}")
    return problems


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    problems = []

    for path in yaml_files(root):
        try:
            list(yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError as err:
            problems.append(f"{path.relative_to(root)}: not YAML: {err}")

    broken = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "broken"},
        "spec": {"replicas": "two", "selector": {}, "template": {}},
    }
    if validate(broken) is None:
        problems.append("the validator accepted a broken Deployment: it checks nothing")

    overlays = sorted((root / "k8s" / "overlays").iterdir())
    if not overlays:
        problems.append("no overlays under k8s/overlays")
    counted = 0
    for overlay in overlays:
        rendered = subprocess.run(
            ["kubectl", "kustomize", str(overlay)], capture_output=True, text=True
        )
        name = overlay.relative_to(root)
        if rendered.returncode != 0:
            problems.append(f"{name}: kubectl kustomize failed: {rendered.stderr.strip()}")
            continue
        objects = [o for o in yaml.safe_load_all(rendered.stdout) if o]
        if not objects:
            problems.append(f"{name}: renders no objects")
        for obj in objects:
            what = f"{name}: {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
            error = validate(obj)
            if error:
                problems.append(f"{what}: {error}")
            counted += 1
            if obj.get("kind") == "Deployment":
                pod = obj["spec"]["template"]["spec"]
                if not pod.get("securityContext", {}).get("runAsNonRoot"):
                    problems.append(f"{what}: pods must run as non-root")
                for c in pod["containers"]:
                    sc = c.get("securityContext", {})
                    if not sc.get("readOnlyRootFilesystem") or sc.get("capabilities", {}).get(
                        "drop"
                    ) != ["ALL"]:
                        problems.append(
                            f"{what}: container {c['name']} needs a read-only root and drop ALL"
                        )

    problems += check_chart(root)

    for problem in problems:
        print(f"validate-k8s: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"validate-k8s: {counted} objects in {len(overlays)} overlays valid for Kubernetes {K8S_VERSION}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
