"""What a controller's /metrics says, for integration tests."""


def scrape(controller):
    """{(name, labels as a sorted tuple): value} from GET /metrics."""
    from prometheus_client.parser import text_string_to_metric_families
    status, text = controller.rest("GET", "/metrics")
    assert status == 200, text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}
