//! The list and memory workloads. list: prefill --objects ConfigMaps, then time
//! --list-repeats full LISTs of the namespace paginated by --page-size (limit and
//! continue). memory: the server's resident memory before and after prefilling
//! --objects ConfigMaps.
//!
//! Invariant: a full LIST counts only if every page answered 2xx; its time runs from
//! the first page's send to the last page's end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Method;

use super::shared::{encode, resident_memory, Ctx, Failures, Run};
use super::{ms, round, Extra, K8sReport, K8sWorkload};
use crate::bench::histogram::Histogram;
use crate::bench::report::Measured;
use crate::bench::BenchError;

/// Pause after the memory prefill before reading RSS, so that batched work settles.
const SETTLE: Duration = Duration::from_secs(2);

/// Runs the list workload.
pub async fn run_list(ctx: &Arc<Ctx>, run: &Run) -> Result<K8sReport, BenchError> {
    let objects = ctx.args.objects_for(K8sWorkload::List);
    let (_, _, prefill) = ctx.prefill(run, objects).await?;
    let conn = ctx.server.connect().await?;
    let failures = Failures::default();
    let mut pages_histogram = Histogram::new();
    let mut runs_ns: Vec<u64> = Vec::new();
    let (mut pages, mut items) = (0u64, 0u64);
    let measured = Instant::now();
    for repeat in 0..ctx.args.list_repeats {
        let started = Instant::now();
        let mut continue_token: Option<String> = None;
        let (mut run_pages, mut run_items, mut complete) = (0u64, 0u64, true);
        loop {
            let mut path = format!("{}?limit={}", ctx.collection(), ctx.args.page_size);
            if let Some(token) = &continue_token {
                path.push_str("&continue=");
                path.push_str(&encode(token));
            }
            let sent = Instant::now();
            let outcome = ctx.server.call(&conn, Method::GET, &path, None).await;
            let answer = match outcome {
                Ok(a) if a.ok() => a,
                other => {
                    failures.record("list page", &other);
                    complete = false;
                    break;
                }
            };
            pages_histogram.record(sent.elapsed());
            let page = answer.json();
            run_pages += 1;
            run_items += page["items"].as_array().map_or(0, |i| i.len() as u64);
            match page["metadata"]["continue"].as_str() {
                Some(token) if !token.is_empty() => continue_token = Some(token.to_owned()),
                _ => break,
            }
        }
        let took = started.elapsed();
        tracing::info!(
            repeat,
            pages = run_pages,
            items = run_items,
            ms = took.as_millis() as u64,
            "bench k8s: full LIST"
        );
        if complete {
            runs_ns.push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
            pages = run_pages;
            items = run_items;
        }
    }
    let duration_s = measured.elapsed().as_secs_f64();
    let mut sorted = runs_ns.clone();
    sorted.sort_unstable();
    let extra = Extra {
        objects: Some(objects),
        prefill_s: Some(round(prefill.as_secs_f64(), 3)),
        request: Some("GET collection with limit and continue"),
        page_size: Some(ctx.args.page_size),
        pages: Some(pages),
        items: Some(items),
        list_runs_ms: Some(runs_ns.iter().map(|&ns| ms(ns)).collect()),
        list_best_ms: sorted.first().map(|&ns| ms(ns)),
        list_median_ms: sorted.get(sorted.len() / 2).map(|&ns| ms(ns)),
        timeouts: Some(failures.timeouts.load(std::sync::atomic::Ordering::Relaxed)),
        ..Extra::default()
    };
    Ok(K8sReport::new(
        K8sWorkload::List,
        ctx,
        1,
        1,
        &Measured {
            histogram: pages_histogram,
            errors: failures.errors(),
            duration_s,
        },
        extra,
    ))
}

/// Runs the memory workload; ops and latencies are those of the prefill creates.
pub async fn run_memory(ctx: &Arc<Ctx>, run: &Run) -> Result<K8sReport, BenchError> {
    let objects = ctx.args.objects_for(K8sWorkload::Memory);
    let conn = ctx.server.connect().await?;
    let before = resident_memory(&ctx.server, &conn).await?;
    let (_, creates, took) = ctx.prefill(run, objects).await?;
    tokio::time::sleep(SETTLE).await;
    let after = resident_memory(&ctx.server, &conn).await?;
    let extra = Extra {
        objects: Some(objects),
        request: Some("POST new ConfigMap (the prefill)"),
        rss_before_bytes: Some(before),
        rss_after_bytes: Some(after),
        rss_after_mib: Some(round(after as f64 / (1024.0 * 1024.0), 1)),
        rss_bytes_per_object: Some(round((after as f64 - before as f64) / objects as f64, 1)),
        ..Extra::default()
    };
    Ok(K8sReport::new(
        K8sWorkload::Memory,
        ctx,
        ctx.args.prefill_clients,
        ctx.args.conns_for(ctx.args.prefill_clients),
        &Measured {
            histogram: creates,
            errors: 0,
            duration_s: took.as_secs_f64(),
        },
        extra,
    ))
}
