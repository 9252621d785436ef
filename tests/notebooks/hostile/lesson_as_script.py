# %% [markdown]
# # Classification with Keras

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from tensorflow import keras

# %%
df = pd.read_csv("data/user_visit_duration.csv")
X = df[["Time (min)"]].values
y = df["Buy"].values

# %%
plt.scatter(df["Time (min)"], df["Buy"])
plt.xlabel("Time (min)")
plt.ylabel("Buy")
plt.show()

# %%
model = keras.Sequential(
    [
        keras.Input(shape=(1,)),
        keras.layers.Dense(1, activation="sigmoid"),
    ]
)

# %%
model.compile(
    optimizer=keras.optimizers.SGD(learning_rate=0.5),
    loss="binary_crossentropy",
    metrics=["accuracy"],
)

# %%
history = model.fit(X, y, epochs=25, verbose=0)
print(f"accuracy after the last epoch: {history.history['accuracy'][-1]:.2f}")

# %%
y_pred = model.predict(X, verbose=0)
y_class_pred = (y_pred > 0.5).astype(int).ravel()
print(f"accuracy on all data: {accuracy_score(y, y_class_pred):.3f}")

# %%
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2)
print(f"train: {X_train.shape}, test: {X_test.shape}")

# %%
params = model.get_weights()
params = [np.zeros(w.shape) for w in params]
model.set_weights(params)

# %%
model.fit(X_train, y_train, epochs=25, verbose=0)
train_accuracy = accuracy_score(y_train, model.predict(X_train, verbose=0) > 0.5)
test_accuracy = accuracy_score(y_test, model.predict(X_test, verbose=0) > 0.5)
print(f"train accuracy: {train_accuracy:.3f}")
print(f"test accuracy: {test_accuracy:.3f}")
