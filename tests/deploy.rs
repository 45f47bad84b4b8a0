//! The deployment files in deploy/ against the real tools that read them: every
//! kuberaft command line in them (the docker-compose services, the static pod, the
//! systemd environment example) passes the binary's own flag parsing and validation
//! and names a three-member cluster; HAProxy accepts its config; the API server
//! accepts the static pod (server-side dry run); systemd accepts the unit; and
//! docker-compose accepts the compose file.
//!
//! The image itself is not built here: that needs a container runtime and Docker
//! Hub, neither of which this machine has.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use clap::Parser;
use common::kube::{json_of, phase, KubeServer};
use kuberaft::config::{Config, ServeArgs};

#[derive(Parser)]
struct Serve {
    #[command(flatten)]
    serve: ServeArgs,
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// True if `tool` is on PATH; otherwise prints why the check is skipped.
fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        eprintln!("SKIPPED: {tool} is not installed");
    }
    found
}

/// Parses and validates `args` (starting with `serve`) as the binary does.
fn serve_config(origin: &str, args: &[String]) -> Config {
    assert_eq!(
        args.first().map(String::as_str),
        Some("serve"),
        "{origin}: not a serve command: {args:?}"
    );
    let argv = std::iter::once("kuberaft".to_owned()).chain(args[1..].iter().cloned());
    let cli = Serve::try_parse_from(argv)
        .unwrap_or_else(|e| panic!("{origin}: kuberaft rejects the flags: {e}"));
    cli.serve
        .validate()
        .unwrap_or_else(|e| panic!("{origin}: kuberaft rejects the configuration: {}", e.0))
}

/// The `command:` lists of the services in a compose file, by service name. The
/// file is ours and keeps to block lists, which is all this reads.
fn compose_commands(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_services = false;
    let mut service = String::new();
    let mut command_indent: Option<usize> = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(ci) = command_indent {
            if indent > ci && trimmed.starts_with("- ") {
                if let Some(last) = out.last_mut() {
                    last.1.push(trimmed[2..].trim().to_owned());
                }
                continue;
            }
            command_indent = None;
        }
        if indent == 0 {
            in_services = trimmed == "services:";
            continue;
        }
        if in_services && indent == 2 && trimmed.ends_with(':') {
            service = trimmed.trim_end_matches(':').to_owned();
        } else if in_services && (trimmed == "command:" || trimmed.starts_with("command: &")) {
            command_indent = Some(indent);
            out.push((service.clone(), Vec::new()));
        }
    }
    out
}

#[test]
fn compose_file_commands_are_valid_kuberaft_flags() {
    let commands = compose_commands(&read("deploy/docker-compose.yml"));
    let names: Vec<&str> = commands.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(names, ["kuberaft-0", "kuberaft-1", "kuberaft-2"]);
    for (service, args) in &commands {
        let config = serve_config(&format!("docker-compose service {service}"), args);
        assert_eq!(&config.name, service);
        let members: Vec<&str> = config
            .initial_cluster
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(members, ["kuberaft-0", "kuberaft-1", "kuberaft-2"]);
        assert!(
            config.peer_tls.is_some(),
            "{service}: peers must speak TLS between containers"
        );
    }
}

#[test]
fn compose_file_passes_docker_compose() {
    if !have("docker-compose") {
        return;
    }
    let out = Command::new("docker-compose")
        .args(["-f", "deploy/docker-compose.yml", "config", "-q"])
        .current_dir(repo(""))
        .output()
        .expect("run docker-compose");
    assert!(
        out.status.success(),
        "docker-compose config: {}",
        stderr(&out)
    );
}

#[test]
fn systemd_example_flags_are_valid_and_the_unit_passes_systemd() {
    phase("the environment example's KUBERAFT_ARGS (backslash-continued, as systemd reads it)");
    let env = read("deploy/systemd/kuberaft.env.example").replace("\\\n", " ");
    let value = env
        .lines()
        .find_map(|l| l.strip_prefix("KUBERAFT_ARGS="))
        .expect("KUBERAFT_ARGS in the example");
    let value = value.trim().trim_matches('"');
    let args: Vec<String> = std::iter::once("serve".to_owned())
        .chain(value.split_whitespace().map(str::to_owned))
        .collect();
    let config = serve_config("deploy/systemd/kuberaft.env.example", &args);
    assert_eq!(config.name, "node-1");
    assert_eq!(config.initial_cluster.len(), 3);
    assert!(config.client_tls.is_some() && config.peer_tls.is_some());

    phase("the unit: ExecStart runs `serve $KUBERAFT_ARGS` and systemd-analyze accepts it");
    let unit = read("deploy/systemd/kuberaft.service");
    assert!(
        unit.lines()
            .any(|l| l == "ExecStart=/usr/local/bin/kuberaft serve $KUBERAFT_ARGS"),
        "{unit}"
    );
    if !have("systemd-analyze") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let local = unit
        .replace(
            "/usr/local/bin/kuberaft",
            &common::binary().display().to_string(),
        )
        .replace(
            "EnvironmentFile=/etc/kuberaft/kuberaft.env",
            &format!(
                "EnvironmentFile={}",
                repo("deploy/systemd/kuberaft.env.example").display()
            ),
        );
    let path = dir.path().join("kuberaft.service");
    std::fs::write(&path, local).expect("write unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("run systemd-analyze");
    // verify exits 0 on unknown keys and bad values, and reports them against the file.
    let complaints: Vec<String> = stderr(&out)
        .lines()
        .filter(|l| l.contains("kuberaft.service"))
        .map(str::to_owned)
        .collect();
    assert!(
        out.status.success() && complaints.is_empty(),
        "systemd-analyze verify: {}",
        stderr(&out)
    );
}

#[test]
fn haproxy_accepts_the_compose_config() {
    if !have("haproxy") {
        return;
    }
    let out = Command::new("haproxy")
        .args(["-c", "-f"])
        .arg(repo("deploy/haproxy.cfg"))
        .output()
        .expect("run haproxy");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(out.status.success(), "haproxy -c: {text}");
    // Outside Docker the replicas' names do not resolve; that must only disable the
    // servers (init-addr none), and nothing else may be wrong.
    let other_warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("[WARNING]") || l.contains("[ALERT]"))
        .filter(|l| !l.contains("could not resolve address 'kuberaft-"))
        .collect();
    assert!(other_warnings.is_empty(), "haproxy -c: {text}");
}

#[test]
fn static_pod_is_accepted_by_the_api_and_its_flags_by_kuberaft() {
    let s = KubeServer::start(&[]);

    phase("the API server accepts the manifest (server-side dry run)");
    let manifest = repo("deploy/static-pods/kuberaft.yaml");
    let manifest = manifest.to_string_lossy();
    let pod = json_of(
        &s,
        &[
            "create",
            "--dry-run=server",
            "--validate=strict",
            "-f",
            &manifest,
            "-o",
            "json",
        ],
    );
    assert_eq!(pod["metadata"]["namespace"], "kube-system");
    assert_eq!(pod["spec"]["hostNetwork"], true);

    phase("its command, with the kubelet's $(VAR) expansion, is valid for kuberaft");
    let command: Vec<String> = pod["spec"]["containers"][0]["command"]
        .as_array()
        .expect("a command")
        .iter()
        .map(|a| {
            a.as_str()
                .unwrap_or_default()
                .replace("$(NODE_NAME)", "cp-1")
                .replace("$(NODE_IP)", "10.0.0.11")
        })
        .collect();
    assert_eq!(command.first().map(String::as_str), Some("kuberaft"));
    let config = serve_config("deploy/static-pods/kuberaft.yaml", &command[1..]);
    assert_eq!(config.name, "cp-1");
    assert_eq!(
        config.advertise_peer_urls,
        ["https://10.0.0.11:2380"],
        "the member must advertise its node address to its peers"
    );
}
