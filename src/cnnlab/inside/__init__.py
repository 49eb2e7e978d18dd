"""Looking inside: the chapter's operations from scratch, worked explanations, activations, pictures, layer tables."""
