"""Everything people read: the HTML report and Explore page, Markdown for Dagster, escaping and colours."""
