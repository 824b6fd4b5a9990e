"""minicnn.explain (minicnn/explainer.py and its page in minicnn/explain_page/): the page, opened in a
real headless browser (Debian's chromium, driven by Selenium), shows the numbers model.trace
computes: a conv unit's multiply-adds and value, its filter's weight gradient for the chosen
class, a pooling window's winner, the receptive field; the class selector changes the gradients."""
import base64
import gzip
import html
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import minicnn
from minicnn.layers import Activation, Add, Conv2D, Dense, Flatten, Input, MaxPooling2D
from minicnn.models import Model, Sequential
from minicnn.utils import set_random_seed

ROOT = Path(__file__).resolve().parents[1]
CONV2 = 3  # the second Conv2D's index in model()


def model():
    """Two convolutions (the second with strides 2 and "same" padding), pooling, a Dense softmax."""
    set_random_seed(5)
    m = Sequential([Conv2D(4, 3, input_shape=(12, 12, 1)), Activation("relu"), MaxPooling2D(),
                    Conv2D(3, 3, strides=2, padding="same"), Activation("relu"), Flatten(), Dense(5),
                    Activation("softmax")], name="small")
    m.compile(loss="categorical_crossentropy", optimizer="adam")
    return m


def image():
    return np.random.default_rng(7).random((12, 12, 1), dtype=np.float32)


def embedded(page):
    """The JSON the page carries, and an array of it back as NumPy."""
    text = re.search(r'<script type="application/json" id="explain-data">(.*?)</script>', page.html, re.DOTALL).group(1)
    return json.loads(text)


def all_finite(data):
    """Every array the page carries holds finite numbers."""
    arrays = [data["input"], *data["loss_grad"].values()]
    for layer in data["layers"]:
        arrays += [layer["output"], layer.get("W"), layer.get("b"), *layer["grad_in"].values()]
    return all(np.isfinite(array(a)).all() for a in arrays if a is not None)


def array(a):
    return np.frombuffer(gzip.decompress(base64.b64decode(a["gz"])), dtype="<f4").reshape(a["shape"])


# ---- the page's data, without a browser ----

def test_the_page_carries_the_traces_numbers_and_needs_nothing_else():
    m, x = model(), image()
    page = minicnn.explain(m, x)
    data = embedded(page)
    forward = m.trace(x[None], keep=True)
    assert [layer["name"] for layer in data["layers"]] == [layer.name for layer in m.layers]
    for layer, out in zip(data["layers"], forward.activations):
        np.testing.assert_array_equal(array(layer["output"]), out[0])
    p = forward.activations[-1][0]
    assert data["predicted"] == int(np.argmax(p)) and data["classes"] == [0, 1, 2, 3, 4]
    assert embedded(minicnn.explain(m, x, classes=2))["classes"] == list(np.argsort(-p)[:2])
    y = np.eye(5, dtype=np.float32)[[2]]
    backward = m.trace(x[None], y, keep=True)
    for layer, g in zip(data["layers"], backward.input_grads):
        np.testing.assert_array_equal(array(layer["grad_in"]["2"]), g[0])
    np.testing.assert_array_equal(array(data["layers"][CONV2]["W"]), m.layers[CONV2].params["W"])
    assert data["layers"][CONV2]["geometry"] == {"kernel": [3, 3], "strides": [2, 2], "dilation": [1, 1],
                                                 "pads": [1, 1]}  # "same" on 5 x 5, stride 2: 3 x 3 out, 1 pad each side
    assert "<script src" not in page.html and "<link" not in page.html and "http" not in page.html.lower()
    assert data["loss_grad"] == {}  # softmax and cross-entropy: the gradient starts at the logits
    assert data["are_probabilities"] and [layer["activation"] for layer in data["layers"]][:2] == [None, "relu"]
    frame = page._repr_html_()  # what a notebook shows: the page in a frame
    assert frame.startswith("<iframe srcdoc=") and html.unescape(frame.split('"')[1]) == page.html


def test_without_softmax_the_last_layer_gets_the_loss_gradient():
    set_random_seed(5)
    m = Sequential([Flatten(input_shape=(3, 3, 1)), Dense(4)])
    m.compile(loss=minicnn.losses.CategoricalCrossentropy(from_logits=True), optimizer="sgd")
    x = image()[:3, :3]
    data = embedded(minicnn.explain(m, x, classes=[1]))
    logits = m.predict(x[None], verbose=0)
    dy, _ = m.loss_gradient(np.eye(4, dtype=np.float32)[[1]], logits)
    np.testing.assert_array_equal(array(data["loss_grad"]["1"]), dy[0])
    assert not data["are_probabilities"] and data["layers"][1]["activation"] is None


def test_dense_top_contributions_and_source_links():
    m, x = model(), image()
    data = embedded(minicnn.explain(m, x, source_root="../source/"))
    dense = data["layers"][6]
    xin = m.trace(x[None], keep=True).activations[5][0]
    W = m.layers[6].params["W"]
    for u, top in enumerate(dense["top"]):
        products = xin * W[:, u]
        assert [k for k, _, _ in top] == list(np.argsort(-np.abs(products), kind="stable")[:8])
        assert all(xk == xin[k] and w == W[k, u] for k, xk, w in top)
    links = {s["label"]: s for s in data["layers"][0]["source"]}
    line = links["conv2d_forward"]["where"].split(":")[1]
    assert links["conv2d_forward"]["href"] == f"../source/minicnn/kernels/reference.py/#__codelineno-0-{line}"
    source = (minicnn.explainer.PACKAGE / "kernels" / "reference.py").read_text().splitlines()
    assert source[int(line) - 1].startswith("def conv2d_forward(")


def test_bad_inputs_name_themselves():
    m = model()
    with pytest.raises(ValueError, match="one image"):
        minicnn.explain(m, np.zeros((2, 12, 12, 1), np.float32))
    with pytest.raises(ValueError, match="class_names has 3 names"):
        minicnn.explain(m, image(), class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="classes must be"):
        minicnn.explain(m, image(), classes=[7])
    with pytest.raises(ValueError, match="most probable classes must be in"):
        minicnn.explain(m, image(), classes=6)
    bare = Sequential([Flatten(input_shape=(4, 4, 1)), Dense(2)])
    with pytest.raises(RuntimeError, match="explain needs a compiled model"):
        minicnn.explain(bare, np.zeros((4, 4, 1), np.float32))
    inputs = Input((4, 4, 1))
    h = Conv2D(1, 1)(inputs)
    branched = Model(inputs, Dense(2)(Flatten()(Add()([h, inputs]))))
    branched.compile(loss="mse", optimizer="sgd")
    with pytest.raises(ValueError, match="chain of layers"):
        minicnn.explain(branched, np.zeros((4, 4, 1), np.float32))


# ---- the page in a browser ----

@pytest.fixture(scope="module")
def browser():
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        reason = "no browser: the page tests need Debian's chromium and chromium-driver (.ci/run installs them)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)  # CI installs them: a skip there would hide the page's tests
        pytest.skip(reason)
    webdriver = pytest.importorskip("selenium.webdriver", reason="the page tests need selenium (the dev extra)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    # root in CI wants --no-sandbox; a container's small /dev/shm wants --disable-dev-shm-usage
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    yield driver
    driver.quit()


def open_page(browser, page, tmp_path):
    path = page.save(tmp_path / "explain.html")
    browser.get_log("browser")  # what earlier pages logged, read and so cleared
    SEEN.clear()
    browser.get(path.resolve().as_uri())
    from selenium.webdriver.support.ui import WebDriverWait
    WebDriverWait(browser, 30).until(lambda b: b.execute_script("return document.body.dataset.ready") == "yes"
                                     or severe_seen(b))
    return browser


def click_cell(browser, canvas, i, j):
    """A real mouse click on cell (i, j) of a map; Selenium's offsets count from the element's centre."""
    from selenium.webdriver.common.action_chains import ActionChains
    rect = browser.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.width, r.height];", canvas)
    H, W = int(canvas.get_attribute("height")), int(canvas.get_attribute("width"))
    zoom_x, zoom_y = (rect[0] - 2) / W, (rect[1] - 2) / H  # 1-pixel border on each side
    ActionChains(browser).move_to_element_with_offset(canvas, int(1 + (j + 0.5) * zoom_x - rect[0] / 2),
                                                      int(1 + (i + 0.5) * zoom_y - rect[1] / 2)).click().perform()


def cells(browser, table, name):
    return np.array([float(td.get_attribute("data-value"))
                     for td in browser.find_elements("css selector", f"#{table} td[data-name={name}]")])


def value(browser, element_id):
    return float(browser.find_element("id", element_id).get_attribute("data-value"))


SEEN = []  # the browser's log, as read by severe_seen while waiting: reading it clears it


def severe_seen(browser):
    SEEN.extend(browser.get_log("browser"))
    return any(e["level"] == "SEVERE" for e in SEEN)


def severe(browser):
    """The errors the page logged since it was opened (an uncaught exception, a failed load...)."""
    severe_seen(browser)
    errors = [e for e in SEEN if e["level"] == "SEVERE"]
    SEEN.clear()
    return errors


def test_a_conv_unit_shows_the_multiply_adds_the_trace_computes(browser, tmp_path):
    from selenium.webdriver.support.ui import Select
    m, x = model(), image()
    page = minicnn.explain(m, x)
    assert all_finite(embedded(page))
    b = open_page(browser, page, tmp_path)
    assert severe(b) == [] and "small" in b.title
    b.find_element("css selector", f'button[data-layer="{CONV2}"]').click()
    i, j, f = 1, 2, 2
    click_cell(b, b.find_elements("css selector", "#maps canvas")[f], i, j)
    forward = m.trace(x[None], keep=True)
    before, out = forward.activations[CONV2 - 1][0], forward.activations[CONV2][0]  # (5, 5, 4) -> (3, 3, 3)
    W, bias = m.layers[CONV2].params["W"], m.layers[CONV2].params["b"]
    window = np.pad(before, ((1, 1), (1, 1), (0, 0)))[2 * i:2 * i + 3, 2 * j:2 * j + 3, :]  # "same": 1 pad each side
    np.testing.assert_array_equal(cells(b, "macs", "x"), window.reshape(-1))
    np.testing.assert_array_equal(cells(b, "macs", "w"), W[:, :, :, f].reshape(-1))
    assert value(b, "unit-value") == out[i, j, f]  # the value the trace computed, float32 exactly
    assert value(b, "unit-z") == pytest.approx(out[i, j, f], rel=1e-5, abs=1e-6)  # the page's own sum + bias
    assert value(b, "unit-sum") == pytest.approx(out[i, j, f] - bias[f], rel=1e-5, abs=1e-6)
    # the receptive field on the 12 x 12 input, back through conv (3, stride 2, pad 1), pool (2), conv (3):
    # rows 1..3 then 2..7 then 2..9; columns 3..5 then 6..11 then 6..13, clipped at 11
    assert b.find_element("id", "input-canvas").get_attribute("data-field") == "2,9,6,11"

    def dW_for(cls):  # the trace's weight gradient of filter f, for the class cls as the target
        y = np.eye(5, dtype=np.float32)[[cls]]
        return m.trace(x[None], y, keep=True).param_grads[CONV2]["W"][:, :, :, f].reshape(-1)

    predicted = int(np.argmax(forward.activations[-1][0]))
    scale = np.abs(dW_for(predicted)).max()
    np.testing.assert_allclose(cells(b, "macs", "dw"), dW_for(predicted), rtol=1e-4, atol=1e-6 * scale)
    grads_before = [c.screenshot_as_base64 for c in b.find_elements("css selector", "#grads canvas")]
    other = (predicted + 1) % 5
    Select(b.find_element("id", "class-select")).select_by_value(str(other))
    grads_after = [c.screenshot_as_base64 for c in b.find_elements("css selector", "#grads canvas")]
    assert grads_after != grads_before  # the gradient maps are the other class's now
    np.testing.assert_allclose(cells(b, "macs", "dw"), dW_for(other), rtol=1e-4,
                               atol=1e-6 * np.abs(dW_for(other)).max())
    assert severe(b) == []


def test_a_pooling_unit_shows_its_winner_the_first_maximum_on_ties(browser, tmp_path):
    m, x = model(), image()
    page = minicnn.explain(m, x)
    assert all_finite(embedded(page))
    b = open_page(browser, page, tmp_path)
    assert severe(b) == []
    relu = m.trace(x[None], keep=True).activations[1][0]  # (10, 10, 4), the pool's input: zeros tie
    windows = relu.reshape(5, 2, 5, 2, 4).transpose(0, 2, 4, 1, 3).reshape(5, 5, 4, 4)  # (i, j, c, cell)
    ties = np.argwhere((windows == windows.max(axis=3, keepdims=True)).sum(axis=3) > 1)
    assert len(ties), "the test needs a window whose maximum is there twice"
    i, j, c = ties[0]
    b.find_element("css selector", 'button[data-layer="2"]').click()
    click_cell(b, b.find_elements("css selector", "#maps canvas")[c], i, j)
    np.testing.assert_array_equal(cells(b, "pool", "x"), windows[i, j, c])
    first = int(np.argmax(windows[i, j, c]))  # row-major: the top-most, then left-most maximum
    winner = b.find_element("css selector", "#pool tr.winner")
    assert (int(winner.get_attribute("data-kh")), int(winner.get_attribute("data-kw"))) == divmod(first, 2)
    assert value(b, "unit-value") == windows[i, j, c].max()
    assert severe(b) == []


def test_the_docs_page_opens_and_draws(browser, tmp_path):
    """docs/explainer/tutorial.html, the page docs/explain.md shows (examples/explain_page.py writes it)."""
    page = (ROOT / "docs" / "explainer" / "tutorial.html").read_text(encoding="utf-8")
    b = open_page(browser, minicnn.explainer.Explanation(page), tmp_path)
    assert severe(b) == []
    assert len(b.find_elements("css selector", "#network button")) == 10  # the tutorial model's layers
    assert len(b.find_elements("css selector", "#maps canvas")) == 64  # the first Conv2D's maps
    assert b.find_element("id", "prediction").text.startswith("prediction: Ankle boot")


def test_the_docs_page_has_the_current_script_and_style():
    page = (ROOT / "docs" / "explainer" / "tutorial.html").read_text(encoding="utf-8")
    for name in ("explain.js", "explain.css"):
        assert (minicnn.explainer.PAGE / name).read_text(encoding="utf-8") in page, \
            f"docs/explainer/tutorial.html has an older {name}: run the command in examples/explain_page.py's docstring"
