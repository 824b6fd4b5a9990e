"""Write the explainer page (minicnn.explain) of a trained tutorial model, and screenshots of it.

    python examples/explain_page.py                          # train 1 epoch, write explain.html
    python examples/explain_page.py --model model.npz        # a model saved by `minicnn train --save`
    python examples/explain_page.py --epochs 1 --seed 0 --classes 3 \\
        --out docs/explainer/tutorial.html --screenshots docs/images

The last line made the page and the pictures of docs/explain.md. The screenshots need selenium
(the dev extra) and Debian's chromium with its driver (`apt-get install chromium chromium-driver`).
"""
import argparse
import shutil
from pathlib import Path

import minicnn
from minicnn import tutorial, utils
from minicnn.datasets.fashion_mnist import CLASS_NAMES
from minicnn.models import load_model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a saved model; without it, the tutorial model is trained first")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--index", type=int, default=0, help="which test image (default: the first)")
    parser.add_argument("--classes", type=int, help="offer the backward pass of the k most probable classes only")
    parser.add_argument("--out", default="explain.html")
    parser.add_argument("--screenshots", metavar="DIR", help="also save three screenshots of the page into DIR")
    args = parser.parse_args()

    if args.seed is not None:
        utils.set_random_seed(args.seed)
    (x, y), (xt, yt) = tutorial.load_data()
    if args.model:
        model = load_model(args.model)
    else:
        model = tutorial.build_model()
        model.fit(x, y, batch_size=64, epochs=args.epochs, verbose=0)
        print("test accuracy", round(model.evaluate(xt, yt, verbose=0)[1], 4))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # On the docs site the page sits in site/explainer/: its code links go to the site's pages of the code.
    root = "../source/" if out.parent.name == "explainer" else None
    minicnn.explain(model, xt[args.index], class_names=CLASS_NAMES, classes=args.classes, source_root=root).save(out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
    if args.screenshots:
        screenshots(out, Path(args.screenshots))


def screenshots(page, folder):
    """explain_conv.png: a unit of the second convolution clicked; explain_pool.png: a pooling
    unit, with the backward pass of the second most probable class; explain_dense.png: a Dense unit."""
    from selenium import webdriver
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import Select, WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--window-size=1400,1000", "--hide-scrollbars"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(shutil.which("chromedriver")))
    try:
        driver.get(page.resolve().as_uri())
        WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.body.dataset.ready") == "yes")

        def click(layer, channel, i, j):  # cell (i, j) of a map; Selenium's offsets count from its centre
            driver.find_element("css selector", f'button[data-layer="{layer}"]').click()
            canvas = driver.find_elements("css selector", "#maps canvas")[channel]
            w, h = canvas.size["width"] - 2, canvas.size["height"] - 2  # less the 1-pixel border
            zoom_x, zoom_y = w / int(canvas.get_attribute("width")), h / int(canvas.get_attribute("height"))
            ActionChains(driver).move_to_element_with_offset(canvas, int((j + 0.5) * zoom_x - w / 2),
                                                             int((i + 0.5) * zoom_y - h / 2)).click().perform()

        folder.mkdir(parents=True, exist_ok=True)
        click(3, 5, 4, 2)
        driver.save_screenshot(str(folder / "explain_conv.png"))
        select = Select(driver.find_element("id", "class-select"))
        select.select_by_index(1)
        click(2, 5, 7, 6)
        driver.save_screenshot(str(folder / "explain_pool.png"))
        select.select_by_index(0)
        click(7, 0, 2, 2)
        driver.save_screenshot(str(folder / "explain_dense.png"))
        print(f"saved 3 screenshots to {folder}/")
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
