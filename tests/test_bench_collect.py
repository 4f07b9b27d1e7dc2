from bench.collect import rebase_links


def test_plot_links_of_a_result_file_are_made_relative_to_the_repository_root():
    text = "![a](plot.png) [b](https://x.org/y) ![c](bench/results/c.png) [d](#anchor)"
    expected = "![a](bench/results/plot.png) [b](https://x.org/y) ![c](bench/results/c.png) [d](#anchor)"
    assert rebase_links(text) == expected
