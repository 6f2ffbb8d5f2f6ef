"""alae-studio: edit real faces in the browser, on a laptop or on a GPU server over SSH.

    alae-studio runs/ffhq --images photos/ --directions smile.npz pca/
    alae-studio model_157.pth --refine 100 --port 7860        # then open http://127.0.0.1:7860
    ssh -L 7860:127.0.0.1:7860 gpu-server                     # from a laptop, to a studio on a server

The page (alae.studio.page) shows the input, its reconstruction and the edited face side by
side; one slider per direction (files given with --directions, else a run directory's
`directions/`, or PCA / SeFa directions computed on demand) in units of the direction's scale,
on a chosen layer group; style mixing and a blend with a second face; truncation for seeds;
noise random / fixed / off; downloads of the shown PNG and its latents.npz, and the command line
that writes the same pixels. It listens on 127.0.0.1 unless --host says otherwise, makes no
share link and fetches nothing from the internet. Gradio is an optional extra:
`pip install -e ".[studio]"`.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from alae.cli import MODEL_HELP, ToolError, resolve_device, run_tool, warn
from alae.studio.uploads import DEFAULT_LIMIT_MB

PROG = "alae-studio"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
OFFLINE_ENVIRONMENT = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description="Edit real faces interactively in the browser.")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--directions", nargs="+", default=[], metavar="FILE_OR_DIR",
                   help="direction files or folders of them (default: the run directory's directions/)")
    p.add_argument("--images", nargs="+", default=[], metavar="FILE_OR_DIR", help="images to pick from")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860, Gradio's)")
    p.add_argument("--refine", type=int, default=0, metavar="N", help="refinement steps offered by default")
    p.add_argument("--psi", type=float, default=0.7, help="truncation psi for seeds (original: 0.7)")
    p.add_argument("--cutoff", type=int, default=8, help="style layers truncated for seeds (original: 8)")
    p.add_argument("--upload-limit-mb", type=float, default=DEFAULT_LIMIT_MB, help="largest upload accepted")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    args = p.parse_args(argv)
    if args.refine < 0 or args.cutoff < 0 or not 0 <= args.psi <= 1:
        p.error("--refine and --cutoff must be >= 0 and --psi in [0, 1]")
    if not 0 < args.upload_limit_mb:
        p.error("--upload-limit-mb must be positive")
    if not 0 < args.port < 65536:
        p.error("--port must be in 1-65535")
    return args


def offered_images(specs: list[str]) -> dict[str, str]:
    """{label: file} for the image files and folders (searched recursively) in `specs`, in order;
    ToolError for a path that is missing or neither (zips and LMDBs: extract the images first)."""
    from alae.datasets.sources import IMAGE_EXTENSIONS

    images: dict[str, str] = {}
    for spec in specs:
        path = Path(spec).expanduser()
        if path.is_dir() and not (path / "data.mdb").exists():
            files = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        elif path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
            files = [path]
        else:
            raise ToolError(f"--images {spec}: not an image file ({', '.join(IMAGE_EXTENSIONS)}) or a folder of them")
        for file in files:
            images.setdefault(str(file), str(file))
    return images


def build(args):
    """(the Gradio page, its Studio) for the parsed arguments; ToolError without Gradio."""
    os.environ.update(OFFLINE_ENVIRONMENT)
    try:
        import gradio  # noqa: F401  (the optional extra)
    except ImportError:
        raise ToolError('alae-studio needs Gradio, an optional extra: pip install -e ".[studio]"') from None
    from alae.faces.landmarks import FaceLandmarker
    from alae.model_files.loading import load_networks
    from alae.studio.page import StudioOptions, build_page
    from alae.studio.session import Studio, find_directions

    device = resolve_device(args.device)
    cfg, model = load_networks(args.model, device)
    studio = Studio(model, device, args.model, [], offered_images(args.images), landmarker_factory=FaceLandmarker)
    studio.directions, studio.notes = find_directions(args.directions, args.model, studio.fingerprint, cfg.latent_dim)
    options = StudioOptions(args.refine, args.psi, args.cutoff, args.upload_limit_mb)
    return build_page(studio, options), studio


def serve(args, block: bool = True):
    """Build and launch the page; with block=False return (page, studio, url) with the server running."""
    from alae.studio.page import launch_options

    page, studio = build(args)
    if args.host not in LOCAL_HOSTS:
        warn(PROG, f"listening on {args.host}: anyone who can reach port {args.port} there can use this model")
    try:
        _, url, _ = page.queue().launch(server_name=args.host, server_port=args.port, prevent_thread_lock=True,
                                        max_file_size=int(args.upload_limit_mb * 2**20), quiet=True,
                                        **launch_options())
    except OSError as e:
        raise ToolError(f"cannot listen on {args.host}:{args.port}: {str(e).splitlines()[0]}") from None
    print(f"{PROG}: {studio.model_path} ({studio.model.resolution} px, {len(studio.directions)} directions, "
          f"{len(studio.images)} images) at {url}  (Ctrl-C stops it)")
    if not block:
        return page, studio, url
    try:
        page.block_thread()
    finally:
        page.close()
    return None


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    return run_tool(PROG, lambda: serve(args))


if __name__ == "__main__":
    sys.exit(main())
