"""Browser extensions uploaded by an account and loaded into the browsers that name them."""
