"""The peer for the serving benchmark: the same model served the way a user would without this
project — PyTorch eager behind Python's standard-library HTTP server.

POST /classify with an image body answers {"label", "index", "score"}; GET /healthz answers ok.
The network is built from the zoo manifest's ``arch`` (the training package's StaticAlphaNet for
the ``imagenet`` / ``fashion_mnist`` spaces, the fixture generator's FixtureNet for the fixture
zoo) with random weights: identical compute to the served ONNX model, which is what a throughput
comparison needs. Preprocessing is the model's own input contract done with Pillow (resize the
short side, centre crop, normalise), inference under ``torch.inference_mode()``, one request per
thread (ThreadingHTTPServer), all cores to torch.

Usage: /usr/bin/python3 bench/pytorch_peer.py --zoo DIR --model NAME --port N [--threads N]
Prints "listening on <port>" once ready.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
RESAMPLE = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}


def build_fixture(entry: dict) -> torch.nn.Module:
    """The fixture zoo's network class (test/fixtures/zoo/generate_fixture_zoo.py)."""
    path = ROOT / "test" / "fixtures" / "zoo" / "generate_fixture_zoo.py"
    spec = importlib.util.spec_from_file_location("generate_fixture_zoo", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    fixture = next(s for s in module.SPECS if s.name == entry["name"])
    torch.manual_seed(0)
    return module.FixtureNet(fixture)


def build_alphanet(entry: dict) -> torch.nn.Module:
    """StaticAlphaNet of the manifest's search space and architecture (training package)."""
    sys.path.insert(0, str(ROOT / "training"))
    from alphanet.export.manifest import arch_from_entry
    from alphanet.models import StaticAlphaNet
    from alphanet.space import load_space

    arch = entry["arch"]
    space = load_space(arch["space"])
    fields = {k: v for k, v in arch.items() if k != "space"}
    torch.manual_seed(0)
    return StaticAlphaNet(space, arch_from_entry(fields), num_classes=len(entry["labels"]))


def network_for(entry: dict) -> torch.nn.Module:
    net = build_fixture(entry) if entry["arch"]["space"] == "fixture" else build_alphanet(entry)
    return net.eval()


class Preprocess:
    """The manifest input contract with Pillow, as a user would write it."""

    def __init__(self, contract: dict) -> None:
        self.size = contract["size"]
        self.short = contract["resizeShortSide"]
        self.gray = contract["channels"] == 1
        self.resample = RESAMPLE[contract["interpolation"]]
        self.mean = np.array(contract["mean"], dtype=np.float32).reshape(-1, 1, 1)
        self.std = np.array(contract["std"], dtype=np.float32).reshape(-1, 1, 1)

    def __call__(self, data: bytes) -> torch.Tensor:
        image = Image.open(io.BytesIO(data))
        image = image.convert("L" if self.gray else "RGB")
        w, h = image.size
        if min(w, h) != self.short:
            scale = self.short / min(w, h)
            image = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), self.resample)
        w, h = image.size
        left, top = round((w - self.size) / 2), round((h - self.size) / 2)
        image = image.crop((left, top, left + self.size, top + self.size))
        array = np.asarray(image, dtype=np.float32) / 255.0
        array = array[None] if self.gray else array.transpose(2, 0, 1)
        return torch.from_numpy((array - self.mean) / self.std).unsqueeze(0)


def make_handler(net: torch.nn.Module, preprocess: Preprocess, labels: list[str]):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as two writes: without TCP_NODELAY, Nagle + delayed ACK would
        # stall every keep-alive response by tens of ms, which would measure TCP, not PyTorch.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            return

        def reply(self, status: int, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - stdlib naming
            if self.path == "/healthz":
                self.reply(200, {"status": "ok"})
            else:
                self.reply(404, {"error": "not found"})

        def do_POST(self) -> None:  # noqa: N802 - stdlib naming
            length = int(self.headers.get("Content-Length", "0"))
            data = self.rfile.read(length)
            if self.path != "/classify":
                self.reply(404, {"error": "not found"})
                return
            try:
                tensor = preprocess(data)
            except Exception as error:  # noqa: BLE001 - any undecodable image is the client's fault
                self.reply(400, {"error": str(error)})
                return
            with torch.inference_mode():
                logits = net(tensor)[0]
            scores = torch.softmax(logits, dim=0)
            index = int(torch.argmax(scores))
            self.reply(200, {"label": labels[index], "index": index, "score": float(scores[index])})

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zoo", type=Path, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    manifest = json.loads((args.zoo / "manifest.json").read_text())
    entry = next((m for m in manifest["models"] if m["name"] == args.model), None)
    if entry is None:
        raise SystemExit(f"no model {args.model} in {args.zoo}")
    net = network_for(entry)
    preprocess = Preprocess(entry["input"])
    with torch.inference_mode():  # first run allocates; requests should not pay for it
        net(torch.zeros(1, entry["input"]["channels"], entry["input"]["size"], entry["input"]["size"]))
    server = ThreadingHTTPServer((args.host, args.port), make_handler(net, preprocess, entry["labels"]))
    server.daemon_threads = True
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
