"""The stages of a fusion run and the result they build."""
