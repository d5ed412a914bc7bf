#!/usr/bin/env python3
"""Summarises a tilekit benchmark run (Google Benchmark JSON in bench/results/).

Writes, next to the JSON files:
  summary.csv  one row per benchmark row: kernel,dtype,m,n,k,threads,library,gflops
               then weights,model,gbps,pct_peak,peak_gflops,bound,cv_pct,size_bytes,detail,settings
               (cv_pct: spread of the repetitions, stddev/mean of wall time, in %)
  summary.md   ceilings, the GEMM table (one row per case, one column per library,
               the best peer, and "<library> / best peer" ratios for non-peer
               libraries such as tilekit), the conversion table, run settings
  *.png        GFLOP/s per shape per library, percent of the measured roofline,
               conversion GB/s
and prints summary.md.

pct_peak is measured against this run's own ceilings (bench_ceilings), as a
roofline: min(compute ceiling, weight intensity x read bandwidth) at the same
thread count. The compute ceiling is the fp32 FMA loop for f32 and the best
bf16 loop (AMX, else vdpbf16ps) for bf16 and f32_bf16w.

Usage: bench_report.py [results_dir] [--run-info run_info.json]
"""
import argparse
import csv
import glob
import json
import re
import statistics
import math
import os
import sys

PEERS = ["onednn", "openblas", "blis", "eigen", "mkl"]  # column order; anything else is a candidate (tilekit)
CSV_HEADER = ["kernel", "dtype", "m", "n", "k", "threads", "library", "gflops",
              "weights", "model", "gbps", "pct_peak", "peak_gflops", "bound", "cv_pct", "size_bytes", "detail", "settings"]


def parse_label(label):
    out = {}
    for part in (label or "").split(";"):
        if "=" in part:
            key, value = part.split("=", 1)
            out[key] = value
    return out


def parse_name(run_name):
    """gemm/<lib>/<dtype>/M:../N:../K:../threads:../<warm|cold>[/min_time:..][/repeats:..][/real_time]"""
    parts = run_name.split("/")
    row = {"kernel": parts[0], "library": parts[1], "dtype": parts[2]}
    for p in parts[3:]:
        if ":" in p:
            key, value = p.split(":", 1)
            if key in ("M", "N", "K", "threads", "bytes"):
                row[key.lower()] = int(value)
        elif p in ("warm", "cold"):
            row["weights"] = p
    return row


def load_rows(results_dir):
    """Rows, errors, rows skipped because their unit is not on this machine
    (error message "unavailable: ...", e.g. the AMX ceiling on a CPU without
    AMX: listed, not a failure), and each binary's context."""
    rows, errors, skipped, contexts = [], [], [], {}
    for path in sorted(glob.glob(os.path.join(results_dir, "*.json"))):
        if os.path.basename(path) == "run_info.json":
            continue
        if os.path.getsize(path) == 0:
            continue  # the filter matched nothing in that binary
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            errors.append(f"{os.path.basename(path)}: unreadable ({e})")
            continue
        context = data.get("context", {})
        # Rounds (TILEKIT_BENCH_ROUNDS) write <binary>@r<round>.json.
        binary = re.sub(r"@r\d+$", "", os.path.splitext(os.path.basename(path))[0])
        contexts[binary] = context
        benchmarks = data.get("benchmarks", [])
        with_median = {b["run_name"] for b in benchmarks if b.get("aggregate_name") == "median"}
        # Coefficient of variation across repetitions (of wall time): how noisy the row was.
        cv = {b["run_name"]: b.get("real_time") for b in benchmarks if b.get("aggregate_name") == "cv"}
        for b in benchmarks:
            if b.get("error_occurred"):
                if b.get("run_type") != "aggregate":
                    message = b.get("error_message", "error")
                    (skipped if message.startswith("unavailable:") else errors).append(f"{b['run_name']}: {message}")
                continue
            is_median = b.get("aggregate_name") == "median"
            is_single = b.get("run_type") == "iteration" and b["run_name"] not in with_median
            if not (is_median or is_single):
                continue
            row = parse_name(b["run_name"])
            row["run_name"] = b["run_name"]
            row["index"] = len(rows)
            row["source"] = binary
            if cv.get(b["run_name"]) is not None:
                row["cv_pct"] = 100.0 * cv[b["run_name"]]
            label = parse_label(b.get("label", ""))
            row.update(gflops=b.get("GFLOP/s"), gbps=b.get("GB/s"), us_per_layer=b.get("us_per_layer"),
                       x_bound=b.get("x_bound"), model=label.get("model", ""),
                       detail=label.get("detail", label.get("path", label.get("what", ""))),
                       settings=" | ".join(x for x in (context.get("settings", ""), context.get("peer_config", "")) if x))
            if "weights" not in row and "weights" in label:
                row["weights"] = label["weights"]
            if row["kernel"] == "ceiling":
                row["detail"] += f" [{binary}]"
            rows.append(row)
    # Google Benchmark repeats error rows per repetition; keep one line each.
    return merge_rounds(rows), sorted(set(errors)), sorted(set(skipped)), contexts


def merge_rounds(rows):
    """One row per benchmark: with several rounds, the round with the median
    GFLOP/s (GB/s for bandwidth rows), and the spread across rounds as cv_pct."""
    groups = {}
    for r in rows:
        groups.setdefault((r["source"], r["run_name"]), []).append(r)
    merged = []
    for group in groups.values():
        if len(group) == 1:
            merged.append(group[0])
            continue
        metric = "gflops" if group[0].get("gflops") is not None else "gbps"
        group.sort(key=lambda r: r.get(metric) or 0.0)
        mid = dict(group[(len(group) - 1) // 2])
        values = [r.get(metric) or 0.0 for r in group]
        mean = statistics.mean(values)
        mid["cv_pct"] = 100.0 * statistics.pstdev(values) / mean if mean else None
        mid["rounds"] = len(group)
        merged.append(mid)
    merged.sort(key=lambda r: r["index"])
    return merged


def ceilings(rows):
    """{(kind, threads): value}: kind is 'f32', 'bf16' (GFLOP/s) or 'mem' (GB/s)."""
    peaks = {}
    for r in rows:
        if r["kernel"] != "ceiling":
            continue
        key = (r["dtype"], r.get("threads", 1))
        value = r["gbps"] if r["dtype"] == "mem" else r["gflops"]
        if value is not None:
            peaks[key] = max(peaks.get(key, 0.0), value)
    return peaks


def add_roofline(rows, peaks):
    for r in rows:
        if r["kernel"] != "gemm" or r.get("gflops") is None:
            continue
        t = r["threads"]
        compute = peaks.get(("f32" if r["dtype"] == "f32" else "bf16", t)) or peaks.get(("f32", t))
        bandwidth = peaks.get(("mem", t))
        weight_bytes = r["n"] * r["k"] * (4 if r["dtype"] == "f32" else 2)
        memory = bandwidth * (2.0 * r["m"] * r["n"] * r["k"] / weight_bytes) if bandwidth else None
        bounds = [(v, name) for v, name in ((compute, "compute"), (memory, "memory")) if v]
        if not bounds:
            continue
        peak, bound = min(bounds)
        r.update(peak_gflops=peak, bound=bound, pct_peak=100.0 * r["gflops"] / peak)


def fmt(x, digits=1):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def write_csv(rows, path):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_HEADER)
        for r in rows:
            w.writerow([r["kernel"], r["dtype"], r.get("m", ""), r.get("n", ""), r.get("k", ""),
                        r.get("threads", 1 if r["kernel"] == "convert" else ""), r["library"],
                        fmt(r.get("gflops"), 2), r.get("weights", ""), r.get("model", ""),
                        fmt(r.get("gbps"), 2), fmt(r.get("pct_peak"), 1), fmt(r.get("peak_gflops"), 1),
                        r.get("bound", ""), fmt(r.get("cv_pct"), 1), r.get("bytes", ""), r.get("detail", ""), r.get("settings", "")])


def case_key(r):
    return (r["dtype"], r["m"], r["n"], r["k"], r["threads"], r.get("weights", ""))


def case_order(key):
    dtype, m, n, k, threads, _ = key
    dtype_rank = {"f32": 0, "bf16": 1, "f32_bf16w": 2}.get(dtype, 3)
    return (dtype_rank, threads, -n * k, n, k, m)  # per dtype and thread count: each weight matrix, M ascending


def impl_rank(library):
    """Conversion rows: the scalar loop, then tilekit's paths weakest first."""
    paths = ["scalar_loop", "tilekit_scalar", "tilekit_avx2", "tilekit_avx512", "tilekit_avx512_bf16", "tilekit_amx",
             "tilekit_neon", "tilekit_neon_bf16", "tilekit_sve", "tilekit_sve_bf16"]
    return paths.index(library) if library in paths else len(paths)


def row_order(r):
    """Ceilings as bench_ceilings registered them, GEMM cases by weight matrix, conversions by size."""
    if r["kernel"] == "ceiling":
        return (0, r["index"])
    if r["kernel"] == "gemm":
        return (1, case_order(case_key(r)), PEERS.index(r["library"]) if r["library"] in PEERS else 99, r["library"])
    return (2, r["dtype"], r.get("bytes", 0), impl_rank(r["library"]))


def gemm_libraries(gemm):
    present = {r["library"] for r in gemm}
    return [p for p in PEERS if p in present] + sorted(present - set(PEERS))


def gemm_table(rows):
    gemm = [r for r in rows if r["kernel"] == "gemm" and r.get("gflops") is not None]
    if not gemm:
        return ["_no GEMM rows in this run_"]
    libs = gemm_libraries(gemm)
    candidates = [l for l in libs if l not in PEERS]
    cases = {}
    for r in gemm:
        cases.setdefault(case_key(r), {})[r["library"]] = r
    head = ["dtype", "M", "N", "K", "threads", "weights"] + libs + ["best peer", "best % roofline"] + \
           [f"{c} / best peer" for c in candidates]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 6 + ["---:"] * (len(head) - 6)) + "|"]
    for key in sorted(cases, key=case_order):
        by_lib = cases[key]
        peer_rows = [by_lib[l] for l in libs if l in PEERS and l in by_lib]
        if key[0] == "f32_bf16w":
            # No peer takes fp32 activations with bf16 weights: the baseline is
            # what a user would run instead, the best peer in f32 or in bf16.
            peer_rows = [r for dtype in ("f32", "bf16") for r in cases.get((dtype,) + key[1:], {}).values()
                         if r["library"] in PEERS]
        best = max(peer_rows, key=lambda r: r["gflops"]) if peer_rows else None
        cells = [str(x) for x in key]
        for lib in libs:
            r = by_lib.get(lib)
            text = fmt(r["gflops"]) if r else "–"
            cells.append(f"**{text}**" if r is not None and r is best else text)
        cells.append((best["library"] + (f" ({best['dtype']})" if best["dtype"] != key[0] else "")) if best else "–")
        cells.append(fmt(best.get("pct_peak"), 0) + "%" if best and best.get("pct_peak") is not None else "–")
        for c in candidates:
            r = by_lib.get(c)
            cells.append(f"{r['gflops'] / best['gflops']:.2f}x" if r and best else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def ceiling_table(rows):
    ceil = [r for r in rows if r["kernel"] == "ceiling"]
    if not ceil:
        return ["_no ceilings in this run_"]
    runs = len({r["source"] for r in ceil})
    lines = ["| ceiling | what | 1 thread | 2 threads |", "|---|---|---:|---:|"]
    for lib in dict.fromkeys(r["library"] for r in ceil):
        mine = [r for r in ceil if r["library"] == lib]
        unit = "GB/s" if mine[0]["dtype"] == "mem" else "GFLOP/s"

        def best(threads):
            values = [r["gbps"] if unit == "GB/s" else r["gflops"] for r in mine if r.get("threads") == threads]
            values = [v for v in values if v is not None]
            return f"{max(values):.1f} {unit}" if values else "–"
        what = mine[0].get("detail", "").split(" [")[0]
        lines.append(f"| {lib} ({mine[0]['dtype']}) | {what} | {best(1)} | {best(2)} |")
    if runs > 1:
        lines += ["", f"_Best of {runs} runs of bench_ceilings (start and end of the run); "
                      "summary.csv lists each run, named in `detail`._"]
    return lines


def human_bytes(n):
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"


def convert_table(rows):
    conv = [r for r in rows if r["kernel"] == "convert" and r.get("gbps") is not None]
    if not conv:
        return ["_no conversion rows in this run_"]
    impls = sorted({r["library"] for r in conv}, key=impl_rank)
    lines = ["| direction | fp32 size | " + " | ".join(impls) + " |", "|---|---:|" + "---:|" * len(impls)]
    keys = sorted({(r["dtype"], r["bytes"]) for r in conv})
    for d, b in keys:
        cells = [fmt(next((r["gbps"] for r in conv if (r["dtype"], r["bytes"], r["library"]) == (d, b, i)), None))
                 or "–" for i in impls]
        lines.append(f"| {d} | {human_bytes(b)} | " + " | ".join(cells) + " |")
    return lines


def settings_lines(contexts, run_info):
    lines = []
    if run_info:
        for key in ("date", "elapsed", "host", "commit", "load_before", "load_after", "contention", "quick", "filter", "note"):
            if run_info.get(key):
                lines.append(f"- {key}: {run_info[key]}")
    any_ctx = next(iter(contexts.values()), {})
    for key in ("host_name", "num_cpus", "mhz_per_cpu", "tilekit_cpu_features", "llc_bytes", "settings", "library_build_type"):
        if key in any_ctx:
            lines.append(f"- {key}: {any_ctx[key]}")
    for binary, ctx in sorted(contexts.items()):
        if "peer_config" in ctx:
            lines.append(f"- {binary}: {ctx['peer_config']}" + (f" [{ctx['peer_object']}]" if "peer_object" in ctx else ""))
        if "tilekit_path" in ctx:
            lines.append(f"- {binary}: default path {ctx['tilekit_path']}")
        if "amx_skipped" in ctx:
            lines.append(f"- {binary}: AMX skipped: {ctx['amx_skipped']}")
    return lines


FAMILY_KERNELS = ("gemm", "convert", "ceiling")


def family_tables(rows):
    """One table per other kernel family (norms, RoPE, softmax, attention): a row
    per case (every name part after the library), a column per library with its
    GB/s (and GFLOP/s where the row has it), and tilekit / <peer> ratios."""
    out = []
    kernels = []
    for r in rows:
        if r["kernel"] not in FAMILY_KERNELS and r["kernel"] not in kernels:
            kernels.append(r["kernel"])
    for kernel in kernels:
        mine = [r for r in rows if r["kernel"] == kernel]
        libs = []
        for r in mine:
            if r["library"] not in libs:
                libs.append(r["library"])
        candidates = [lib for lib in libs if lib.startswith("tilekit")]
        peers = [lib for lib in libs if not lib.startswith("tilekit") and lib != "ceiling"]
        cases = {}
        for r in mine:
            parts = r["run_name"].split("/")
            case = "/".join([parts[2]] + [p for p in parts[3:] if ":" in p and not p.startswith(("min_time", "iterations", "repeats"))])
            cases.setdefault(case, {})[r["library"]] = r
        # GFLOP/s for attention and for rows that have no GB/s (graph_prefill),
        # the executor's µs per layer for graph_overhead.
        if any(r.get("us_per_layer") is not None for r in mine):
            metric, unit = "us_per_layer", "µs per layer outside kernels"
        elif any(r.get("gflops") for r in mine) and (kernel.startswith("attention") or
                                                      not any(r.get("gbps") for r in mine)):
            metric, unit = "gflops", "GFLOP/s"
        else:
            metric, unit = "gbps", "GB/s"
        ratio_cols = [(c, p) for c in candidates for p in peers]
        out += ["", f"## {kernel}, {unit}", "",
                "| case | " + " | ".join(libs) + "".join(f" | {c} / {p}" for c, p in ratio_cols) + " |",
                "|---" * (1 + len(libs) + len(ratio_cols)) + "|"]
        for case, by_lib in cases.items():
            cells = [fmt(by_lib[lib].get(metric)) if lib in by_lib else "" for lib in libs]
            for c, p in ratio_cols:
                a, b = by_lib.get(c, {}).get(metric), by_lib.get(p, {}).get(metric)
                cells.append(f"{a / b:.2f}×" if a and b else "")
            out.append(f"| {case} | " + " | ".join(cells) + " |")
    return out


def write_markdown(rows, errors, skipped, contexts, run_info, path):
    quick = any(c.get("quick") == "1" for c in contexts.values())
    reps = "one short repetition (TILEKIT_BENCH_QUICK)" if quick else "median of 5 repetitions"
    rounds = max((r.get("rounds", 1) for r in rows), default=1)
    if rounds > 1:
        reps += (f", then the median over {rounds} rounds (every binary ran once per round, round-robin, so a slow "
                 "phase of the machine falls on every library alike; cv = spread across rounds)")
    md = ["# tilekit benchmarks", "",
          f"GFLOP/s = 2·M·N·K / wall time, {reps}; the machine is shared, so compare within a run. "
          "`cold` rows rotate through weight copies totalling more than 2× the LLC (every library alike); "
          "`warm` rows reuse one weight buffer. bf16 = bf16 × bf16 → fp32. "
          "Best peer in **bold**; `% roofline` is against this run's ceilings, "
          "min(compute ceiling, weight bytes × read bandwidth): a ceiling sampled in a busy moment can put a row above 100%.", "",
          "## Ceilings (measured in this run)", ""] + ceiling_table(rows) + \
         ["", "## GEMM: C[M,N] = A[M,K] · B[K,N], GFLOP/s", ""] + gemm_table(rows) + \
         ["", "## fp32 ↔ bf16 conversion, GB/s (bytes read + written)", ""] + convert_table(rows) + \
         family_tables(rows) + \
         ["", "## Run", ""] + settings_lines(contexts, run_info)
    if skipped:
        md += ["", "## Skipped (not on this machine)", ""] + [f"- {e}" for e in skipped]
    if errors:
        md += ["", "## Errors", ""] + [f"- {e}" for e in errors]
    with open(path, "w") as f:
        f.write("\n".join(md) + "\n")
    return md


# --- plots -----------------------------------------------------------------

def plot_all(rows, results_dir):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench_report: matplotlib missing (python3-matplotlib): no plots", file=sys.stderr)
        return []
    written = []
    gemm = [r for r in rows if r["kernel"] == "gemm" and r.get("gflops") is not None]
    colors = {"onednn": "tab:blue", "openblas": "tab:orange", "blis": "tab:green", "eigen": "tab:purple",
              "mkl": "tab:brown", "tilekit": "tab:red"}

    def color(lib):
        return colors.get(lib, colors["tilekit"] if lib.startswith("tilekit") else "tab:gray")

    def bar_panels(series_rows, series_of, value, title, ylabel, path, log=True):
        threads = sorted({r["threads"] for r in series_rows})
        shapes = sorted({(r["m"], r["n"], r["k"], r.get("weights", "")) for r in series_rows},
                        key=lambda s: (-s[1] * s[2], s[1], s[2], s[0]))
        series = list(dict.fromkeys(series_of(r) for r in sorted(
            series_rows, key=lambda r: (PEERS.index(r["library"]) if r["library"] in PEERS else 99, r["dtype"] != "f32", r["dtype"]))))
        fig, axes = plt.subplots(len(threads), 1, figsize=(max(12, 0.75 * len(shapes) + 4), 4.6 * len(threads)),
                                 squeeze=False)
        width = 0.8 / max(1, len(series))
        for ax, t in zip(axes[:, 0], threads):
            for i, s in enumerate(series):
                xs, ys = [], []
                for x, shape in enumerate(shapes):
                    match = [r for r in series_rows if series_of(r) == s and r["threads"] == t
                             and (r["m"], r["n"], r["k"], r.get("weights", "")) == shape]
                    if match and value(match[0]) is not None:
                        xs.append(x - 0.4 + width * (i + 0.5))
                        ys.append(value(match[0]))
                lib = s.split()[0]
                ax.bar(xs, ys, width, label=s, color=color(lib),
                       alpha=1.0 if s.endswith("f32") or " " not in s else 0.55,
                       hatch="//" if s.endswith("bf16") else None, edgecolor="white", linewidth=0.3)
            ax.set_xticks(range(len(shapes)))
            ax.set_xticklabels([f"{m}×{n}×{k}" + (" cold" if w == "cold" else "") for m, n, k, w in shapes],
                               rotation=50, ha="right", fontsize=8)
            if log:
                ax.set_yscale("log")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{title} — {t} thread{'s' if t > 1 else ''}", fontsize=11)
            ax.grid(axis="y", which="both", alpha=0.3)
            for x in range(1, len(shapes)):  # separate weight matrices
                if shapes[x][1:3] != shapes[x - 1][1:3]:
                    ax.axvline(x - 0.5, color="black", alpha=0.25, linewidth=0.8)
        # One legend above the panels, where it cannot hide a bar.
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", ncol=len(series), fontsize=9, frameon=False)
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)

    for dtype in sorted({r["dtype"] for r in gemm}):
        sel = [r for r in gemm if r["dtype"] == dtype]
        bar_panels(sel, lambda r: r["library"], lambda r: r["gflops"],
                   f"GEMM {dtype}: GFLOP/s per shape (M×N×K)", "GFLOP/s (log)",
                   os.path.join(results_dir, f"gemm_{dtype}_gflops.png"))
    with_pct = [r for r in gemm if r.get("pct_peak") is not None]
    if with_pct:
        bar_panels(with_pct, lambda r: f"{r['library']} {r['dtype']}", lambda r: r["pct_peak"],
                   "GEMM: % of this run's roofline (min(compute ceiling, weight bytes × read bandwidth))",
                   "% of roofline", os.path.join(results_dir, "gemm_pct_peak.png"), log=False)

    conv = [r for r in rows if r["kernel"] == "convert" and r.get("gbps") is not None]
    if conv:
        dirs = sorted({r["dtype"] for r in conv}, reverse=True)
        fig, axes = plt.subplots(1, len(dirs), figsize=(7 * len(dirs), 4.8), squeeze=False)
        for ax, d in zip(axes[0], dirs):
            for impl in sorted({r["library"] for r in conv}, key=impl_rank):
                pts = sorted((r["bytes"], r["gbps"]) for r in conv if r["dtype"] == d and r["library"] == impl)
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=impl,
                        linestyle="--" if impl == "scalar_loop" else "-")
            ax.set_xscale("log", base=2)
            sizes = sorted({r["bytes"] for r in conv})
            ax.set_xticks(sizes)
            ax.set_xticklabels([human_bytes(s) for s in sizes], fontsize=8)
            ax.set_xlabel("fp32 array size")
            ax.set_ylabel("GB/s (read + written)")
            ax.set_title(d.replace("_", " "))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        path = os.path.join(results_dir, "convert_gbps.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results_dir", nargs="?", default=os.path.join(os.path.dirname(__file__), "..", "bench", "results"))
    parser.add_argument("--run-info", help="JSON with run metadata written by scripts/bench")
    args = parser.parse_args()
    rows, errors, skipped, contexts = load_rows(args.results_dir)
    run_info = {}
    if args.run_info and os.path.exists(args.run_info):
        with open(args.run_info) as f:
            run_info = json.load(f)
    add_roofline(rows, ceilings(rows))
    rows.sort(key=row_order)
    write_csv(rows, os.path.join(args.results_dir, "summary.csv"))
    md = write_markdown(rows, errors, skipped, contexts, run_info, os.path.join(args.results_dir, "summary.md"))
    plots = plot_all(rows, args.results_dir)
    print("\n".join(md))
    print(f"\nwrote {os.path.join(args.results_dir, 'summary.csv')}, summary.md"
          + (", " + ", ".join(os.path.basename(p) for p in plots) if plots else ""))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
