//! Compiles kuberaft's own protobuf definitions (etcd's v3 API and the peer protocol)
//! with a vendored protoc, so a build needs nothing from the system.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // Edition 2021: setting the variable is safe, and build scripts run single-threaded.
    std::env::set_var("PROTOC", protoc);
    tonic_prost_build::configure()
        .bytes(".")
        .generate_default_stubs(true)
        .compile_protos(
            &[
                "proto/etcd/kv.proto",
                "proto/etcd/rpc.proto",
                "proto/peer/peer.proto",
            ],
            &["proto"],
        )?;
    Ok(())
}
