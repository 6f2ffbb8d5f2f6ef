"""alae-studio's page (Gradio Blocks): sources, the three panels, sliders, mixing and downloads.

    blocks = build_page(studio, StudioOptions(refine=0, psi=0.7, cutoff=8, upload_limit_mb=20))
    blocks.launch(server_name="127.0.0.1", server_port=7860, **launch_options())

The page holds no model state: each tab keeps only the specs of its two sources (gr.State);
the Studio (alae.studio.session) encodes a source once and caches it, so a slider, layer-group,
blend or mix change runs `show_edit`, which decodes the edited image alone. Those events skip
Gradio's queue and its progress display (queue=False): measured on the demo model, the queue's
round trip cost more than the decode (docs/PERFORMANCE.md, "alae-studio"). Elements tests
and users can address have elem_ids (ELEMENT_IDS). Nothing is fetched from the internet: the
theme uses the system's fonts, analytics are off and no share link is made.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import gradio as gr

from alae.editing.layer_groups import layer_groups
from alae.errors import UserError
from alae.studio.session import Studio
from alae.studio.sources import SourceSpec
from alae.studio.uploads import upload_problem
from alae.studio.view import MIX_OFF, STUDIO_NOISE, View, compose, reproducing_command

PANEL_HEIGHT = 320  # px on the page; small models' images are scaled up, pixelated
MAX_SLIDERS = 32  # direction sliders on the page (the rest of a larger set is left out, with a note)
STRENGTH_RANGE = 5.0  # ours: ±5 scales (alae-edit's default sweep is ±3); the original's sliders were ±40 raw units
STRENGTH_STEP = 0.1
RANDOM_SEEDS = 2**31  # "Random seed" draws from [0, 2^31)
FIRST_KINDS = ("image", "upload", "seed")
SECOND_KINDS = ("none", "image", "upload", "seed")
PAGE_CSS = ("#edited img, #input img, #reconstruction img "
            "{image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain}")
ELEMENT_IDS = ("message", "upload-message", "input", "reconstruction", "edited", "command", "upload", "second-upload", "save",
               "downloads", "edit-layers", "noise")


@dataclass(frozen=True)
class StudioOptions:
    """Page defaults from the command line: refinement steps, seed truncation (psi, cutoff), the
    upload limit (MB) and the number of directions computed on demand."""

    refine: int = 0
    psi: float = 0.7
    cutoff: int = 8
    upload_limit_mb: float = 20.0
    computed: int = 10


def offline_theme() -> gr.themes.Base:
    """Gradio's default look with the system's fonts (its default theme fetches Google fonts)."""
    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "monospace"])


def launch_options() -> dict:
    """launch() arguments: the page's look (system fonts, pixelated upscaling of small images) and
    nothing that reaches the internet or opens the server further (no share link, no PWA, no MCP)."""
    return {"share": False, "theme": offline_theme(), "css": PAGE_CSS, "footer_links": [], "pwa": False,
            "mcp_server": False, "ssr_mode": False}


def _spec(studio: Studio, kind: str, image: str | None, upload: str | None, seed, align: bool, refine,
          noise: str, psi: float, cutoff) -> SourceSpec | None:
    """The SourceSpec the controls describe (None for 'none', or when nothing is chosen yet);
    `upload` is a file that passed `upload_problem`."""
    steps = max(int(refine or 0), 0)
    if kind == "seed":
        return SourceSpec.from_seed(int(seed or 0), float(psi), int(cutoff))
    if kind == "image" and image:
        return SourceSpec.image(studio.images[image], image, align, steps, noise)
    if kind == "upload" and upload:
        return SourceSpec.image(upload, upload.replace("\\", "/").rsplit("/", 1)[-1], align, steps, noise)
    return None


def build_page(studio: Studio, options: StudioOptions) -> gr.Blocks:
    """The page for `studio` (module docstring)."""
    groups = list(layer_groups(studio.num_layers))
    if studio.num_layers == 1:
        groups = ["all"]  # one code layer (backbone mlp): nothing to pick or mix by layer
    limit = int(options.upload_limit_mb * 2**20)
    labels = list(studio.images)

    with gr.Blocks(title="alae-studio", analytics_enabled=False) as page:
        gr.Markdown(f"### alae-studio — `{studio.model_path}` ({studio.model.resolution} px, "
                    f"{studio.num_layers} style layers, model {studio.fingerprint})")
        message = gr.Markdown("", elem_id="message")
        upload_message = gr.Markdown("", elem_id="upload-message")
        specs = gr.State((None, None))
        uploads = gr.State((None, None))  # the files uploaded for the first and second face, once checked
        with gr.Row():
            shown = gr.Image(label="Input", type="numpy", format="png", interactive=False, height=PANEL_HEIGHT,
                             elem_id="input")
            recon = gr.Image(label="Reconstruction", type="numpy", format="png", interactive=False,
                             height=PANEL_HEIGHT, elem_id="reconstruction")
            edited = gr.Image(label="Edited", type="numpy", format="png", interactive=False, height=PANEL_HEIGHT,
                              elem_id="edited")
        command = gr.Textbox(label="The same pixels from the command line", interactive=False, elem_id="command")
        with gr.Row():
            edit_layers = gr.Dropdown(groups, value="all", label="Directions move the layers", elem_id="edit-layers")
            mix_layers = gr.Dropdown([MIX_OFF, *groups], value=MIX_OFF, label="Second face's styles on")
            blend = gr.Slider(0, 1, 0, step=0.01, label="Blend toward the second face")
        with gr.Row():
            reset = gr.Button("Reset sliders")
            computed = gr.Number(options.computed, precision=0, minimum=1, label="Directions to compute")
            add_pca = gr.Button("Add PCA directions")
            add_sefa = gr.Button("Add SeFa directions", visible=studio.model.backbone == "style")
        sliders = []
        with gr.Row():
            for k in range(MAX_SLIDERS):
                sliders.append(gr.Slider(-STRENGTH_RANGE, STRENGTH_RANGE, 0, step=STRENGTH_STEP,
                                         visible=False, elem_id=f"direction-{k}", min_width=240))
        with gr.Row():
            with gr.Column():
                first_kind = gr.Radio(FIRST_KINDS, value="image" if labels else "seed", label="Face")
                first_image = gr.Dropdown(labels, value=labels[0] if labels else None, label="Image (--images)")
                first_upload = gr.File(label="Upload an image", type="filepath", elem_id="upload")
                with gr.Row():
                    first_seed = gr.Number(0, precision=0, label="Seed")
                    next_image = gr.Button("Next image")
                    random_seed = gr.Button("Random seed")
            with gr.Column():
                second_kind = gr.Radio(SECOND_KINDS, value="none", label="Second face (mixing, blend)")
                second_image = gr.Dropdown(labels, value=labels[0] if labels else None, label="Image (--images)")
                second_upload = gr.File(label="Upload a second image", type="filepath", elem_id="second-upload")
                second_seed = gr.Number(1, precision=0, label="Seed")
            with gr.Column():
                align = gr.Checkbox(False, label="Align faces (FFHQ crop, dlib)")
                refine = gr.Number(options.refine, precision=0, minimum=0, label="Refinement steps")
                noise = gr.Radio(list(STUDIO_NOISE), value="fixed", label="Noise", elem_id="noise")
                psi = gr.Slider(0, 1, options.psi, step=0.05, label="Truncation ψ (seeds)")
                cutoff = gr.Number(options.cutoff, precision=0, minimum=0, label="Truncated layers (seeds)")
        with gr.Row():
            save = gr.Button("Save PNG and latents", elem_id="save")
            downloads = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="downloads")

        source_controls = [first_kind, first_image, first_seed, second_kind, second_image, second_seed, align,
                           refine, noise, psi, cutoff]
        view_controls = [edit_layers, mix_layers, blend, noise, *sliders]

        def view_of(edit_group, mix_group, t, noise_name, *strengths) -> View:
            count = min(len(studio.directions), MAX_SLIDERS)
            return View(tuple(float(s) for s in strengths[:count]), edit_group, mix_group, float(t),
                        STUDIO_NOISE[noise_name])

        def sources_of(pair, progress=None):
            def on_step(step, losses):
                if progress is not None:
                    progress((step + 1, max(pair[0].refine, 1)), desc="refining")
            first = studio.source(pair[0], on_step) if pair[0] else None
            second = studio.source(pair[1], on_step) if pair[1] else None
            return first, second

        def edited_view(pair, view: View):
            first, second = sources_of(pair)
            if first is None:
                return None, "", "Choose an image, upload one or pick a seed."
            wplus = compose(first, second, view, studio.directions, studio.num_layers)
            picture = studio.render(wplus, first.key, view.noise)
            line, where = reproducing_command(studio.model_path, first, second, view, studio.directions,
                                              studio.num_layers)
            text = f"{line}    # writes {where}" if line else f"No single command: {where}"
            notes = [n for s in (first, second) if s is not None for n in s.notes]
            return picture, text, "\n\n".join(notes)

        def load(pair, uploaded, *values, progress=gr.Progress()):
            controls = dict(zip(["first_kind", "first_image", "first_seed", "second_kind", "second_image",
                                 "second_seed", "align", "refine", "noise", "psi", "cutoff"],
                                values[:len(source_controls)]))
            strengths = values[len(source_controls):]
            noise_mode = STUDIO_NOISE[controls["noise"]]
            common = (controls["align"], controls["refine"], noise_mode, controls["psi"], controls["cutoff"])
            try:
                first = _spec(studio, controls["first_kind"], controls["first_image"], uploaded[0],
                              controls["first_seed"], *common)
                second = None if controls["second_kind"] == "none" else _spec(
                    studio, controls["second_kind"], controls["second_image"], uploaded[1],
                    controls["second_seed"], *common)
                candidate = (first, second)
                a, _ = sources_of(candidate, progress)
            except UserError as e:
                return (pair, gr.skip(), gr.skip(), gr.skip(), gr.skip(), f"**{e}**")
            view = view_of(*strengths)
            if a is None:
                return candidate, None, None, None, "", "Choose an image, upload one or pick a seed."
            picture, text, notes = edited_view(candidate, view)
            return (candidate, studio.input_picture(a, view.noise), studio.render(a.wplus, a.key, view.noise),
                    picture, text, notes)

        def show_edit(pair, *strengths):
            try:
                picture, text, notes = edited_view(pair, view_of(*strengths))
            except UserError as e:
                return gr.skip(), gr.skip(), f"**{e}**"
            return picture, text, notes

        def slider_updates():
            notes = []
            if len(studio.directions) > MAX_SLIDERS:
                notes.append(f"{len(studio.directions)} directions: the page shows the first {MAX_SLIDERS}")
            updates = []
            for k in range(MAX_SLIDERS):
                if k < len(studio.directions):
                    d = studio.directions[k].direction
                    updates.append(gr.update(label=f"{d.attribute} ({d.method}, scale {d.scale:.3g})",
                                             info=studio.directions[k].file, visible=True))
                else:
                    updates.append(gr.update(visible=False))
            return updates, notes

        def add_directions(method, num, pair, *view_values):
            try:
                studio.add_computed(method, int(num))
            except UserError as e:
                return [gr.skip()] * MAX_SLIDERS + [gr.skip(), gr.skip(), f"**{e}**"]
            updates, notes = slider_updates()
            picture, text, more = edited_view(pair, view_of(*view_values)) if pair[0] else (None, "", "")
            return updates + [picture, text, "\n\n".join([*notes, more])]

        def save_view(pair, *strengths):
            first, second = sources_of(pair)
            if first is None:
                return gr.skip(), "Nothing to save yet."
            view = view_of(*strengths)
            wplus = compose(first, second, view, studio.directions, studio.num_layers)
            return studio.save_view(studio.render(wplus, first.key, view.noise), wplus,
                                    {"first": first.spec.label, "second": second.spec.label if second else ""}), ""

        def take_upload(which: int, path, uploaded):
            """Check an upload; a good one becomes the face's file (and the kind 'upload'), a bad one
            leaves everything as it was. The file box is emptied for the next upload either way."""
            problem = upload_problem(path, limit) if path else "nothing was uploaded"
            if problem:
                return uploaded, None, gr.skip(), f"**{problem}**"
            kept = list(uploaded)
            kept[which] = path
            return tuple(kept), None, "upload", ""

        load_outputs = [specs, shown, recon, edited, command, message]
        load_inputs = [specs, uploads, *source_controls, *view_controls]
        for control in (first_kind, first_image, second_kind, second_image, align, noise):
            control.change(load, load_inputs, load_outputs, trigger_mode="always_last")
        for control in (first_seed, second_seed, refine, cutoff):
            control.submit(load, load_inputs, load_outputs)
        psi.release(load, load_inputs, load_outputs)
        for which, (box, kind) in enumerate([(first_upload, first_kind), (second_upload, second_kind)]):
            box.upload(lambda path, uploaded, which=which: take_upload(which, path, uploaded), [box, uploads],
                       [uploads, box, kind, upload_message]).then(load, load_inputs, load_outputs)
        next_image.click(lambda name: gr.update(value=labels[(labels.index(name) + 1) % len(labels)])
                         if labels and name in labels else gr.skip(), first_image, first_image)
        random_seed.click(lambda: (gr.update(value="seed"), random.randrange(RANDOM_SEEDS)), None,
                          [first_kind, first_seed]).then(load, load_inputs, load_outputs)
        edit_inputs = [specs, *view_controls]
        for control in (edit_layers, mix_layers, blend, *sliders):
            control.change(show_edit, edit_inputs, [edited, command, message], trigger_mode="always_last",
                           show_progress="hidden", queue=False)
        reset.click(lambda: [0.0] * MAX_SLIDERS, None, sliders)
        directions_outputs = [*sliders, edited, command, message]
        add_pca.click(lambda *v: add_directions("pca", *v), [computed, *edit_inputs], directions_outputs)
        add_sefa.click(lambda *v: add_directions("sefa", *v), [computed, *edit_inputs], directions_outputs)
        save.click(save_view, edit_inputs, [downloads, message])

        def on_start():
            updates, notes = slider_updates()
            return updates + ["\n\n".join([*studio.notes, *notes])]

        page.load(on_start, None, [*sliders, message]).then(load, load_inputs, load_outputs)
    return page
