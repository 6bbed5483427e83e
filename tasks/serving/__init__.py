"""What a team consumes: batch recommendations of a model, and the champion/challenger
decisions that say which model that is. Sits above evaluation and the recommenders."""
