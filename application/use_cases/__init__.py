"""One module per flow of DESIGN.md; each use case is a class named by its verb."""
