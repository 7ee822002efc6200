"""Decode speed through the embedded endpoint vs llama.cpp in-process, on smollm2-135m.

    .venv/bin/python bench/bench_local.py [--repeats 9] [--max-tokens 128]
    LLMLAB_LOCAL_THREADS=2 .venv/bin/python bench/bench_local.py   # override the thread count

Both sides stream the same greedy chat completion from the same GGUF file with the same thread
count and OpenMP wait policy; tokens/s = (content chunks - 1) / (last chunk - first chunk), so
prompt processing and HTTP set-up are excluded and only the per-token overhead of the server
(HTTP/SSE framing, the event loop, the openai SDK parsing) is compared. Runs alternate between
the two sides and the ratio is the median of per-repeat ratios, so drifting background load hits
both alike. Also printed: CPU time per token (server + client process vs in-process), which
does not depend on load. Target: speed ratio >= 0.9.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

# Same wait policy as the server child (see llmlab/local/_server.py); must be set before
# llama_cpp loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

MODEL = "smollm2-135m"
PROMPT = "Write a short story about a robot who learns to paint."


def _decode_rate(chunks) -> tuple[float, int]:
    """Tokens/s between the first and last content chunk, and the number of content chunks."""
    stamps = [time.perf_counter() for text in chunks if text]
    if len(stamps) < 2:
        return float("nan"), len(stamps)
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]), len(stamps)


def _server_texts(client, max_tokens: int):
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": PROMPT}], max_tokens=max_tokens,
        temperature=0, stream=True)
    for chunk in stream:
        if chunk.choices:
            yield chunk.choices[0].delta.content


def _inproc_texts(llama, max_tokens: int):
    stream = llama.create_chat_completion(
        messages=[{"role": "user", "content": PROMPT}], max_tokens=max_tokens, temperature=0,
        stream=True)
    for chunk in stream:
        yield chunk["choices"][0]["delta"].get("content")


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    return (f"CPU: {cpu}; logical cores: {os.cpu_count()}; load avg: "
            f"{' '.join(f'{x:.2f}' for x in load)}; Python {sys.version.split()[0]}")


def _process_cpu_s(pid: int) -> float:
    """user+system CPU seconds of a process (Linux /proc; 0 elsewhere)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(side, pids) -> tuple[float, int, float]:
    """(decode tok/s, content chunks, CPU seconds of ``pids`` during the run)."""
    before = sum(_process_cpu_s(p) for p in pids)
    rate, n = _decode_rate(side())
    return rate, n, sum(_process_cpu_s(p) for p in pids) - before


def _run(sides, pids, repeats: int) -> dict[str, list[tuple[float, int, float]]]:
    for side in sides.values():  # warm-up: page in weights, first-call allocations
        _decode_rate(side())
    results: dict[str, list] = {name: [] for name in sides}
    for i in range(repeats):
        # Alternate which side goes first so neither always runs right after the other.
        for name in (("server", "in-process") if i % 2 == 0 else ("in-process", "server")):
            results[name].append(_measure(sides[name], pids[name]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()

    import llama_cpp
    import openai

    from llmlab.local import bundled_models, start
    from llmlab.local._server import N_CTX
    from llmlab.local._server import n_threads as server_threads

    path = next(m for m in bundled_models() if m.alias == MODEL).path()
    n_threads = server_threads()  # what the server uses ($LLMLAB_LOCAL_THREADS)
    llama = llama_cpp.Llama(model_path=str(path), chat_format="chatml", n_ctx=N_CTX,
                            n_threads=n_threads, n_threads_batch=n_threads, verbose=False)
    with start(models=[MODEL], quiet=True) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="unused")
        sides = {"server": lambda: _server_texts(client, args.max_tokens),
                 "in-process": lambda: _inproc_texts(llama, args.max_tokens)}
        # The server side's CPU includes the client (this process: SDK, SSE parsing).
        pids = {"server": [server.pid, os.getpid()], "in-process": [os.getpid()]}
        results = _run(sides, pids, args.repeats)
    _report(results, n_threads, args, llama_cpp.__version__)


def _report(results, n_threads, args, version) -> None:
    print(_machine())
    print(f"llama-cpp-python {version}; model {MODEL}; n_threads {n_threads}; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; max_tokens {args.max_tokens}; "
          f"repeats {args.repeats}")
    rates = {name: [r for r, _, _ in runs] for name, runs in results.items()}
    cpu_ms = {name: statistics.median(1000 * c / n for _, n, c in runs)
              for name, runs in results.items()}
    for name, values in rates.items():
        tokens = statistics.median(n for _, n, _ in results[name])
        print(f"{name:>11}: median {statistics.median(values):6.1f} tok/s  (min {min(values):.1f}, "
              f"max {max(values):.1f}; {tokens:.0f} tokens/run; {cpu_ms[name]:.1f} CPU-ms/token)")
    # Each repeat runs both sides back to back, so per-repeat ratios cancel slow drifts in
    # background load that the two medians alone would mix into the comparison.
    paired = statistics.median(s / i for s, i in zip(rates["server"], rates["in-process"], strict=True))
    verdict = "OK" if paired >= 0.9 else "BELOW TARGET"
    print(f"decode speed ratio server/in-process: {paired:.2f} (median of paired runs; "
          f"target >= 0.90: {verdict})")
    print(f"CPU efficiency in-process/server (incl. client): "
          f"{cpu_ms['in-process'] / cpu_ms['server']:.2f}")


if __name__ == "__main__":
    main()
