public enum SwipeSynthPlaceholder {}
