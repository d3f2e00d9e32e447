"""One module per flow of DESIGN.md (a package where one file would not read in one sitting);
each use case is a class named by its verb."""
