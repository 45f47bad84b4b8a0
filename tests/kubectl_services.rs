//! kubectl against one replica: services (ClusterIP allocation from 10.96.0.0/12 and
//! its release, requested IPs, NodePort allocation and conflicts, type changes,
//! immutability, headless and ExternalName services, concurrent creates) and
//! endpoints.

mod common;

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::kube::KubeServer;

fn phase(what: &str) {
    eprintln!("--- {what}");
}

fn create(s: &KubeServer, yaml: &str) -> Result<String, String> {
    let out = s.kubectl_stdin(&["create", "-f", "-"], yaml);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A service manifest: `extra_spec` lines go under `spec`, `port_extra` under the port.
fn service(name: &str, ty: &str, extra_spec: &str, port_extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  type: {ty}\n{extra_spec}  selector:\n    app: {name}\n  ports:\n  - port: 80\n{port_extra}"
    )
}

fn cluster_ip(s: &KubeServer, name: &str) -> String {
    s.ok(&["get", "svc", name, "-o", "jsonpath={.spec.clusterIP}"])
}

fn node_port(s: &KubeServer, name: &str) -> u16 {
    let p = s.ok(&[
        "get",
        "svc",
        name,
        "-o",
        "jsonpath={.spec.ports[0].nodePort}",
    ]);
    p.trim()
        .parse()
        .unwrap_or_else(|_| panic!("no node port on {name}: {p:?}"))
}

fn in_service_range(ip: &str) -> bool {
    let Ok(ip) = ip.parse::<Ipv4Addr>() else {
        return false;
    };
    let n = u32::from(ip);
    let base = u32::from(Ipv4Addr::new(10, 96, 0, 0));
    n > base && n < base + (1 << 20) - 1
}

#[test]
fn services_get_cluster_ips_and_node_ports() {
    let s = KubeServer::start(&[]);

    phase("kubectl create service clusterip allocates an IP in 10.96.0.0/12");
    s.ok(&["create", "service", "clusterip", "web", "--tcp=80:8080"]);
    let web_ip = cluster_ip(&s, "web");
    assert!(in_service_range(&web_ip), "{web_ip}");
    let out = s.ok(&["get", "svc", "web"]);
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ],
        "{out}"
    );
    assert!(
        out.contains(&web_ip) && out.contains("80/TCP") && out.contains("ClusterIP"),
        "{out}"
    );
    let get =
        |name: &str, path: &str| s.ok(&["get", "svc", name, "-o", &format!("jsonpath={{{path}}}")]);
    assert_eq!(get("web", ".spec.clusterIPs[0]"), web_ip);
    assert_eq!(get("web", ".spec.sessionAffinity"), "None");
    assert_eq!(get("web", ".spec.ipFamilyPolicy"), "SingleStack");
    assert_eq!(get("web", ".spec.ipFamilies[0]"), "IPv4");
    assert_eq!(get("web", ".spec.internalTrafficPolicy"), "Cluster");
    assert_eq!(get("web", ".spec.ports[0].targetPort"), "8080");
    assert!(s.ok(&["describe", "svc", "web"]).contains(&web_ip));

    phase("kubectl expose gives the new service the pod's labels as selector");
    s.ok(&["run", "nginx", "--image=nginx", "--port=80"]);
    s.ok(&["expose", "pod", "nginx", "--port=80"]);
    let exposed = cluster_ip(&s, "nginx");
    assert!(in_service_range(&exposed) && exposed != web_ip, "{exposed}");
    assert!(s
        .ok(&["get", "svc", "nginx", "-o", "wide"])
        .contains("run=nginx"));

    phase("a requested IP is honoured once; the second asker gets 422");
    create(
        &s,
        &service("fixed", "ClusterIP", "  clusterIP: 10.96.100.100\n", ""),
    )
    .expect("create fixed");
    assert_eq!(cluster_ip(&s, "fixed"), "10.96.100.100");
    let err = create(
        &s,
        &service("fixed2", "ClusterIP", "  clusterIP: 10.96.100.100\n", ""),
    )
    .unwrap_err();
    assert!(err.contains("provided IP is already allocated"), "{err}");
    assert!(err.contains("spec.clusterIPs"), "{err}");
    let err = create(
        &s,
        &service("far", "ClusterIP", "  clusterIP: 10.200.0.1\n", ""),
    )
    .unwrap_err();
    assert!(err.contains("is not in the valid range"), "{err}");

    phase("--dry-run=server shows the IP and node port a create would get, takes nothing");
    let shown = s.ok(&[
        "create",
        "service",
        "nodeport",
        "dry",
        "--tcp=80:8080",
        "--dry-run=server",
        "-o",
        "jsonpath={.spec.clusterIP} {.spec.ports[0].nodePort}",
    ]);
    let (dry_ip, dry_port) = shown.trim().split_once(' ').expect("IP and node port");
    assert!(in_service_range(dry_ip), "{shown}");
    let dry_port: u16 = dry_port.parse().expect("a node port");
    assert!((30000..=32767).contains(&dry_port), "{shown}");
    let out = s.kubectl(&["get", "svc", "dry"]);
    assert!(!out.status.success(), "a dry run stored the service");
    create(
        &s,
        &service(
            "took-dry",
            "NodePort",
            &format!("  clusterIP: {dry_ip}\n"),
            &format!("    nodePort: {dry_port}\n"),
        ),
    )
    .expect("the IP and port a dry run showed are still free");
    let out = s.kubectl_stdin(
        &["create", "--dry-run=server", "-f", "-"],
        &service("fixed3", "ClusterIP", "  clusterIP: 10.96.100.100\n", ""),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("provided IP is already allocated"),
        "{err}"
    );
    s.ok(&["delete", "svc", "took-dry"]);

    phase("deleting a service frees its IP");
    s.ok(&["delete", "svc", "fixed"]);
    create(
        &s,
        &service("fixed2", "ClusterIP", "  clusterIP: 10.96.100.100\n", ""),
    )
    .expect("IP freed");
    s.ok(&["delete", "svc", "web"]);
    create(
        &s,
        &service(
            "reuse",
            "ClusterIP",
            &format!("  clusterIP: {web_ip}\n"),
            "",
        ),
    )
    .expect("web's IP freed");

    phase("clusterIP may not change once set");
    let err = s.fails(&[
        "patch",
        "svc",
        "reuse",
        "-p",
        "{\"spec\":{\"clusterIP\":\"10.96.5.5\",\"clusterIPs\":[\"10.96.5.5\"]}}",
    ]);
    assert!(err.contains("may not change once set"), "{err}");

    phase("NodePort services get node ports; requested ones are exclusive");
    s.ok(&["create", "service", "nodeport", "np", "--tcp=80:80"]);
    let np = node_port(&s, "np");
    assert!((30000..=32767).contains(&np), "{np}");
    assert!(s
        .ok(&["get", "svc", "np"])
        .contains(&format!("80:{np}/TCP")));
    create(&s, &service("np1", "NodePort", "", "    nodePort: 30080\n")).expect("create np1");
    assert_eq!(node_port(&s, "np1"), 30080);
    let err = create(&s, &service("np2", "NodePort", "", "    nodePort: 30080\n")).unwrap_err();
    assert!(
        err.contains(
            "spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
        ),
        "{err}"
    );
    let err = create(&s, &service("np3", "NodePort", "", "    nodePort: 40000\n")).unwrap_err();
    assert!(
        err.contains(
            "provided port is not in the valid range. The range of valid ports is 30000-32767"
        ),
        "{err}"
    );
    let err = create(
        &s,
        &service("cip", "ClusterIP", "", "    nodePort: 30081\n"),
    )
    .unwrap_err();
    assert!(
        err.contains("may not be used when `type` is 'ClusterIP'"),
        "{err}"
    );
    let selected = s.ok(&[
        "get",
        "svc",
        "--field-selector",
        "spec.type=NodePort",
        "-o",
        "name",
    ]);
    let mut names: Vec<&str> = selected.lines().collect();
    names.sort_unstable();
    assert_eq!(names, ["service/np", "service/np1"]);

    phase("a type change to ClusterIP releases the node port");
    s.ok(&[
        "patch",
        "svc",
        "np1",
        "-p",
        "{\"spec\":{\"type\":\"ClusterIP\"}}",
    ]);
    assert_eq!(get("np1", ".spec.ports[0].nodePort"), "");
    create(&s, &service("np2", "NodePort", "", "    nodePort: 30080\n"))
        .expect("port freed by the type change");
    s.ok(&[
        "patch",
        "svc",
        "np1",
        "-p",
        "{\"spec\":{\"type\":\"NodePort\"}}",
    ]);
    let again = node_port(&s, "np1");
    assert!(
        (30000..=32767).contains(&again) && again != 30080,
        "{again}"
    );

    phase("LoadBalancer services get node ports and, with Local traffic, a health check port");
    create(
        &s,
        &service("lb", "LoadBalancer", "  externalTrafficPolicy: Local\n", ""),
    )
    .expect("create lb");
    let out = s.ok(&["get", "svc", "lb"]);
    assert!(out.contains("<pending>"), "{out}");
    let hc: u16 = get("lb", ".spec.healthCheckNodePort")
        .parse()
        .expect("health check port");
    assert!((30000..=32767).contains(&hc));
    assert_ne!(hc, node_port(&s, "lb"));

    phase("a load balancer's status shows as its external IP");
    let status = r#"{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.10"}]}}}"#;
    s.ok(&[
        "patch",
        "svc",
        "lb",
        "--subresource=status",
        "--type=merge",
        "-p",
        status,
    ]);
    assert!(s.ok(&["get", "svc", "lb"]).contains("192.0.2.10"));
    assert_eq!(get("lb", ".status.loadBalancer.ingress[0].ipMode"), "VIP");

    phase("headless and ExternalName services");
    create(&s, &service("hl", "ClusterIP", "  clusterIP: None\n", "")).expect("create headless");
    assert!(s.ok(&["get", "svc", "hl"]).contains("None"));
    s.ok(&[
        "create",
        "service",
        "externalname",
        "ext",
        "--external-name=example.com",
    ]);
    let out = s.ok(&["get", "svc", "ext"]);
    assert!(
        out.contains("ExternalName") && out.contains("example.com") && out.contains("<none>"),
        "{out}"
    );
    assert_eq!(get("ext", ".spec.clusterIP"), "");
    let freed = cluster_ip(&s, "reuse");
    s.ok(&[
        "patch",
        "svc",
        "reuse",
        "-p",
        "{\"spec\":{\"type\":\"ExternalName\",\"externalName\":\"x.example.com\"}}",
    ]);
    assert_eq!(get("reuse", ".spec.clusterIP"), "");
    create(
        &s,
        &service("taker", "ClusterIP", &format!("  clusterIP: {freed}\n"), ""),
    )
    .expect("IP freed by ExternalName");

    phase("services are listed by kubectl get all");
    assert!(s.ok(&["get", "all"]).contains("service/lb"));
}

#[test]
fn concurrent_creates_get_distinct_values() {
    let s = KubeServer::start(&[]);
    phase("twelve NodePort services created at once get distinct IPs and ports");
    let names: Vec<String> = (0..12).map(|i| format!("c{i}")).collect();
    std::thread::scope(|scope| {
        for n in &names {
            let s = &s;
            scope.spawn(move || {
                create(s, &service(n, "NodePort", "", "")).expect("concurrent create")
            });
        }
    });
    let mut ips = HashSet::new();
    let mut ports = HashSet::new();
    for n in &names {
        let ip = cluster_ip(&s, n);
        assert!(in_service_range(&ip), "{ip}");
        assert!(ips.insert(ip.clone()), "{ip} handed out twice");
        assert!(
            ports.insert(node_port(&s, n)),
            "node port of {n} handed out twice"
        );
    }
    phase("deleting them all frees every value for reuse");
    s.ok(&["delete", "svc", "--all"]);
    for (i, ip) in ips.iter().enumerate() {
        create(
            &s,
            &service(
                &format!("r{i}"),
                "ClusterIP",
                &format!("  clusterIP: {ip}\n"),
                "",
            ),
        )
        .expect("reuse freed IP");
    }
}

#[test]
fn endpoints_round_trip() {
    let s = KubeServer::start(&[]);
    phase("endpoints: create, columns, describe, validation, delete");
    create(
        &s,
        "apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: web\nsubsets:\n- addresses:\n  - ip: 10.0.0.1\n  - ip: 10.0.0.2\n  ports:\n  - port: 8080\n",
    )
    .expect("create endpoints");
    let out = s.ok(&["get", "ep", "web"]);
    assert!(
        out.contains("ENDPOINTS") && out.contains("10.0.0.1:8080,10.0.0.2:8080"),
        "{out}"
    );
    assert_eq!(
        s.ok(&[
            "get",
            "endpoints",
            "web",
            "-o",
            "jsonpath={.subsets[0].ports[0].protocol}"
        ]),
        "TCP"
    );
    assert!(s.ok(&["describe", "ep", "web"]).contains("10.0.0.1"));
    let err = create(
        &s,
        "apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: bad\nsubsets:\n- addresses:\n  - ip: not-an-ip\n  ports:\n  - port: 0\n",
    )
    .unwrap_err();
    assert!(
        err.contains("subsets[0].addresses[0].ip") && err.contains("must be a valid IP address"),
        "{err}"
    );
    assert!(err.contains("subsets[0].ports[0].port"), "{err}");
    s.ok(&["delete", "ep", "web"]);
    s.fails(&["get", "ep", "web"]);
}

#[test]
fn the_kubernetes_service_is_kept() {
    let s = KubeServer::start(&[]);
    let wait_for = |what: &str, check: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !check() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                s.log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    phase("default/kubernetes appears with the range's first IP and this server's port");
    let present = || {
        s.kubectl(&["get", "svc", "kubernetes", "-o", "name"])
            .status
            .success()
    };
    wait_for("the kubernetes service", &present);
    assert_eq!(cluster_ip(&s, "kubernetes"), "10.96.0.1");
    let get = |path: &str| {
        s.ok(&[
            "get",
            "svc",
            "kubernetes",
            "-o",
            &format!("jsonpath={{{path}}}"),
        ])
    };
    assert_eq!(get(".spec.ports[0].port"), "443");
    assert_eq!(get(".spec.ports[0].name"), "https");
    assert_eq!(get(".spec.ports[0].targetPort"), s.port.to_string());
    assert_eq!(get(".metadata.labels.component"), "apiserver");
    let endpoints = || {
        s.kubectl(&[
            "get",
            "ep",
            "kubernetes",
            "-o",
            "jsonpath={.subsets[0].ports[0].port}",
        ])
        .stdout
            == s.port.to_string().into_bytes()
    };
    wait_for("the kubernetes endpoints", &endpoints);
    let slice = || {
        s.kubectl(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=kubernetes",
            "-o",
            "jsonpath={.items[0].ports[0].port} {.items[0].endpoints[0].conditions.ready} {.items[0].addressType}",
        ])
        .stdout
            == format!("{} true IPv4", s.port).into_bytes()
    };
    wait_for("the kubernetes endpoint slice", &slice);

    phase("its IP is reserved");
    let err = create(
        &s,
        &service("thief", "ClusterIP", "  clusterIP: 10.96.0.1\n", ""),
    )
    .unwrap_err();
    assert!(err.contains("provided IP is already allocated"), "{err}");

    phase("deleted, it comes back");
    s.ok(&["delete", "svc", "kubernetes"]);
    wait_for("the kubernetes service to return", &present);
    assert_eq!(cluster_ip(&s, "kubernetes"), "10.96.0.1");
}
