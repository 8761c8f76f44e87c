"""The client's side of the bot (issue 25): what a linked client sees and answers."""
