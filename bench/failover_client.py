#!/usr/bin/env python3
"""Streams one greedy completion from a coordinator's OpenAI API and fails a node mid-answer.

    failover_client.py URL PROMPT MAX_TOKENS AFTER SIGNAL PID

After AFTER streamed chunks it sends SIGNAL (KILL: death, STOP: a hang, NONE) to PID, then
prints one JSON line: the time from the failure to the first token computed after it (the
end of the longest stall after the failure: tokens computed before it may still arrive
first), the median gap between tokens before it, the replay length (the prompt and the
tokens before that token: the history the new plan recomputes) and the whole text (to
compare with a run without failure). Uses only the standard library; talks only to URL.
"""
import json
import os
import signal
import sys
import time
import urllib.request


def main():
    url, prompt, max_tokens, after, sig, pid = sys.argv[1:7]
    max_tokens, after, pid = int(max_tokens), int(after), int(pid)
    models = json.load(urllib.request.urlopen(url + "/v1/models", timeout=30))
    body = json.dumps({
        "model": models["data"][0]["id"], "prompt": prompt, "max_tokens": max_tokens,
        "temperature": 0, "stream": True, "stream_options": {"include_usage": True},
    }).encode()
    req = urllib.request.Request(url + "/v1/completions", data=body,
                                 headers={"Content-Type": "application/json"})
    times, text, usage = [], [], None
    failed_at = None
    with urllib.request.urlopen(req, timeout=600) as resp:
        for raw in resp:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if "error" in event:
                raise SystemExit("stream error: %s" % event["error"])
            if event.get("usage"):
                usage = event["usage"]
            for choice in event.get("choices", []):
                if choice.get("text"):
                    times.append(time.monotonic())
                    text.append(choice["text"])
            if failed_at is None and len(times) >= after:
                failed_at = time.monotonic()
                if sig != "NONE":
                    os.kill(pid, getattr(signal, "SIG" + sig))
    if failed_at is None or usage is None:
        raise SystemExit("the answer ended before the failure (%d chunks)" % len(times))
    before = sorted(b - a for a, b in zip(times[:after - 1], times[1:after]))
    # Tokens generated before the failure may still be on their way to this client; the
    # first token the recovered pipeline computed ends the longest stall after the failure.
    later = [i for i, t in enumerate(times) if t > failed_at]
    stall_end, longest = None, -1.0
    for i in later:
        gap = times[i] - max(failed_at, times[i - 1] if i > 0 else failed_at)
        if gap > longest:
            stall_end, longest = i, gap
    print(json.dumps({
        # from the failure to the first token computed after it
        "gap_ms": (times[stall_end] - failed_at) * 1e3 if stall_end is not None else None,
        "median_token_ms": before[len(before) // 2] * 1e3 if before else None,
        # the history the new plan recomputes: the prompt and every token before that one
        "replay_tokens": usage["prompt_tokens"] + (stall_end if stall_end is not None else after),
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": usage["completion_tokens"],
        "chunks": len(times),
        # one token per chunk throughout: the counts are exact, else lower bounds
        "exact": len(times) == usage["completion_tokens"],
        "text": "".join(text),
    }))


if __name__ == "__main__":
    main()
