"""Prompts the embedded prior never saw are named in one line; its own captions pass silently."""

from dreamlift.cli import text3d_main
from dreamlift.embedded.motions import MOTIONS
from dreamlift.embedded.shapes import COLOURS, SHAPES, caption
from dreamlift.embedded.vocabulary import unknown_words, vocabulary_warning, warn_of_unknown_words
from dreamlift.priors.views import VIEWS


def test_every_caption_of_the_embedded_models_passes_silently():
    captions = [caption(colour, shape, view) for colour in COLOURS for shape in SHAPES for view in (None, *VIEWS)]
    captions += [f"{caption(colour, shape)} {motion}" for colour in COLOURS for shape in SHAPES for motion in MOTIONS]
    assert len(captions) == 30 * 5 + 30 * 6
    assert [c for c in captions if vocabulary_warning(c) is not None] == []


def test_unknown_words_are_named_once_each_in_one_line():
    assert unknown_words("A Corgi, a CORGI on a plate!") == ["corgi", "on", "plate"]
    warning = vocabulary_warning("a corgi")
    assert warning.startswith('warning: the embedded prior does not know "corgi": it knows')
    assert "cube" in warning and "purple" in warning and "--model" in warning and "\n" not in warning


def test_only_the_embedded_prior_warns(capsys):
    warn_of_unknown_words("runwayml/stable-diffusion-v1-5", "a corgi")
    assert capsys.readouterr().err == ""
    warn_of_unknown_words("embedded", "a corgi")
    assert capsys.readouterr().err.count("\n") == 1


def test_sample_prior_names_the_words_the_embedded_prior_does_not_know(tmp_path, capsys):
    argv = ["sample-prior", "a cheeseburger", "--num", "1", "--steps", "1", "--out", str(tmp_path / "s.png")]
    assert text3d_main(argv) == 0
    err = capsys.readouterr().err
    assert 'does not know "cheeseburger"' in err and (tmp_path / "s.png").is_file()
