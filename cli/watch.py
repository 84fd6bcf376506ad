"""`maskmodel watch`: live mask detection on a camera, a stream URL or a video file."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from maskmodel.cli.detector import MODEL_OPTION, detector_options, detector_settings, mask_detector
from maskmodel.cli.verbosity import verbose


@click.command()
@click.option("--source", default="0", show_default=True, help="Camera index, stream URL or video file.")
@click.option("--no-display", is_flag=True, help="No window (headless); use --out to keep the stream.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the annotated stream to this video file (a new one: an existing file or link is never "
                   "replaced).")
@click.option("--every", type=click.IntRange(1), default=1, show_default=True, help="Detect in every Nth frame.")
@MODEL_OPTION
@detector_options
@click.option("--max-frames", type=click.IntRange(1), default=None, help="Stop after this many frames.")
def watch(source, no_display, out_path, every, model, face_detector, preset, threshold, scales, flip, nms_iou,
          first_pass, box_adjust, max_frames) -> None:
    """Show (or write) the annotated stream with frames per second; press q in the window to quit."""
    import cv2

    from maskmodel.drawing.draw import draw_faces
    from maskmodel.drawing.labels import LabelStyle
    from maskmodel.runtime.files import fresh_file
    from maskmodel.video.tracking import FaceTracker
    from maskmodel.video.frames import (VideoReadError, VideoWriteError, iter_frames, open_capture,
                                        open_video_writer, track_captions, tracked_faces)

    settings = detector_settings(face_detector, preset, threshold, scales, flip, nms_iou, box_adjust, first_pass)
    if out_path is not None and os.path.lexists(out_path):
        raise click.UsageError(f"{out_path} exists: watch writes a new file and never replaces one (the source "
                               "included); choose another --out")
    no_display = no_display or _no_window(out_path)
    # the stream is written to a fresh file beside --out (fresh_file) and moved there when it ends
    try:
        capture = open_capture(int(source) if source.isdigit() else source,
                               quiet=not verbose(click.get_current_context()))
    except VideoReadError as error:
        raise click.ClickException(str(error)) from error
    detector, tracker, writer, temp, drawn = mask_detector(model, settings), FaceTracker(), None, None, []
    fps_in = capture.get(cv2.CAP_PROP_FPS) or 25.0
    started, frames = time.perf_counter(), 0
    try:
        for index, frame in iter_frames(capture):
            if index % every == 0:
                drawn = tracked_faces(detector.detect(frame), tracker)
            frames += 1
            shown = draw_faces(frame, drawn, detector.classes, prefixes=track_captions(drawn),
                               style=LabelStyle(enlarge=1.0))  # the stream's frame size
            rate = frames / (time.perf_counter() - started)
            cv2.putText(shown, f"{rate:.1f} fps", (10, shown.shape[0] - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                        (255, 255, 255), 2, cv2.LINE_AA)
            if out_path is not None:
                if writer is None:
                    try:
                        temp = fresh_file(out_path)
                        writer = open_video_writer(temp, "mp4v", fps_in, frame.shape[1], frame.shape[0])
                    except (OSError, VideoWriteError) as error:
                        if temp is not None:
                            os.unlink(temp)
                        raise click.ClickException(str(error)) from error
                writer.write(shown)
            if not no_display:
                try:
                    cv2.imshow("maskmodel watch (q quits)", shown)
                    if cv2.waitKey(1) & 0xFF == ord("q"):
                        break
                except cv2.error as error:
                    raise click.ClickException(f"no display ({error.msg.strip()}): use --no-display") from None
            if max_frames and frames >= max_frames:
                break
    finally:
        capture.release()
        if writer is not None:
            writer.release()
            _publish(temp, out_path)
        if not no_display:
            cv2.destroyAllWindows()
    people = tracker.people()
    masked = sum(label == "with_mask" for label in people.values())
    click.echo(f"{frames} frames, {frames / max(time.perf_counter() - started, 1e-9):.1f} fps, "
               f"{len(people)} people ({masked} with mask)" + (f"; written to {out_path}" if out_path else ""))


def _no_window(out_path: Path | None) -> bool:
    """True when no window can be shown here (`display_problem`): then the stream is only written to --out, with
    a note; without --out, one line and exit 2 (OpenCV's Qt would abort the process)."""
    from maskmodel.runtime.opencv import display_problem

    problem = display_problem()
    if problem is None:
        return False
    if out_path is None:
        failure = click.ClickException(f"no display ({problem}): use --no-display or --out")
        failure.exit_code = 2
        raise failure
    click.echo(f"note: no display ({problem}): writing the stream to {out_path} only", err=True)
    return True


def _publish(temp: Path, out_path: Path) -> None:
    """Move the written stream to --out, unless something took that name meanwhile (then it stays at `temp`)."""
    from maskmodel.runtime.files import publish_file

    try:
        publish_file(temp, out_path, replace=False)
    except FileExistsError:
        raise click.ClickException(f"{out_path} appeared while watching; the stream is kept in {temp}") from None
